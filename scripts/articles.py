"""The source articles the course is built on, cited in each notebook's references cell.

The notebooks call each of them "the article" in the text and list it here by title and author
(and the English original it translates, where the article names one). Authors that the articles
do not name are given as the blog they were published on.
"""

from __future__ import annotations

ARTICLES: dict[str, dict[str, str]] = {
    "python_cnn": {
        "label": "Deep learning with Python",
        "title": "Python深度学习——卷积神经网络 (Deep learning with Python: convolutional neural networks)",
        "author": "unnamed author, CSDN blog",
        "about": "convolution, padding and stride, pooling, flattening before the classifier",
    },
    "conv_pool_backprop": {
        "label": "Convolution, pooling and backpropagation",
        "title": "CNN——卷积、池化与误差反向传播 (CNNs: convolution, pooling and error backpropagation)",
        "author": "unnamed author, CSDN blog",
        "about": "depth, weight sharing, max and mean pooling and their backward pass",
    },
    "intuitive_explanation": {
        "label": "An intuitive explanation of CNNs",
        "title": "卷积神经网络的直观解释 (An intuitive explanation of convolutional neural networks)",
        "author": "Chinese translation, CSDN blog",
        "original": "Ujjwal Karn, \"An Intuitive Explanation of Convolutional Neural Networks\", "
                    "KDnuggets, November 2016",
        "about": "the edge kernels, training by backpropagation (the boat example), LeNet, the "
                 "history of architectures",
    },
    "tds_cnn": {
        "label": "Convolutional neural networks",
        "title": "卷积神经网络 (Convolutional neural networks)",
        "author": "Chinese translation",
        "original": "\"Convolutional Neural Networks\" by the Medium author @rromanss23, Towards "
                    "Data Science",
        "about": "convolution in Python, the curve detector, locally connected layers, 1x1 "
                 "convolutions, the architecture pattern",
    },
    "layers_and_params": {
        "label": "Layers and parameters",
        "title": "【机器学习】卷积层,池化层,全连接层,BN层作用;CNN 网络参数数量的计算 (What convolution, "
                 "pooling, fully connected and batch-norm layers do; counting a CNN's parameters)",
        "author": "unnamed author, CSDN blog",
        "about": "parameter counting (the Keras summary of 19,189 parameters), batch norm and its "
                 "benefits, stacking small filters",
    },
}


def references_markdown(*keys: str) -> str:
    """The markdown of a notebook's references cell for the articles ``keys``."""
    unknown = [k for k in keys if k not in ARTICLES]
    if unknown or not keys:
        raise ValueError(f"references: unknown article keys {unknown} (known: {', '.join(ARTICLES)})")
    lines = ["## References", "",
             "This notebook follows these articles (\"the article\" in the text; where it draws on "
             "several, the text names one by its short title in italics):", ""]
    for key in keys:
        a = ARTICLES[key]
        entry = f"- **{a['label']}**: *{a['title']}*, {a['author']}"
        if "original" in a:
            entry += f"; translated from {a['original']}"
        lines.append(entry + f". On {a['about']}.")
    return "\n".join(lines)
