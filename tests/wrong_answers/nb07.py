"""Typical wrong solutions of notebook 07_training, per exercise (format: wrong_answers/__init__.py)."""

from wrong_answers import WrongAnswer

ASSIGNMENT = "07_training"

_LENET_TAIL = """
                Flatten(),
                Linear(16 * 5 * 5, 120, rng=rng), ReLU(),
                Linear(120, 100, rng=rng), ReLU(),
                Linear(100, 10, rng=rng),
            ])
"""

WRONG = {
    1: [  # build_lenet(init): the region follows `rng = np.random.default_rng(init)`
        WrongAnswer(
            "padding 2 on the 32x32 input",
            """
            return Sequential([
                Conv2d(1, 6, 5, padding=2, rng=rng), ReLU(), MaxPool2d(2),
                Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),""" + _LENET_TAIL,
            hint="have no padding",
        ),
        WrongAnswer(
            "flatten size of a 28x28 input (16*4*4)",
            """
            return Sequential([
                Conv2d(1, 6, 5, rng=rng), ReLU(), MaxPool2d(2),
                Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
                Flatten(),
                Linear(16 * 4 * 4, 120, rng=rng), ReLU(),
                Linear(120, 100, rng=rng), ReLU(),
                Linear(100, 10, rng=rng),
            ])
            """,
            hint="16*5*5 = 400",
            not_hint=("padding",),
        ),
        WrongAnswer(
            "no ReLU between the FC layers",
            """
            return Sequential([
                Conv2d(1, 6, 5, rng=rng), ReLU(), MaxPool2d(2),
                Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
                Flatten(),
                Linear(16 * 5 * 5, 120, rng=rng),
                Linear(120, 100, rng=rng),
                Linear(100, 10, rng=rng),
            ])
            """,
            hint="a ReLU is missing",
        ),
        WrongAnswer(
            "a ReLU after the last FC layer",
            """
            return Sequential([
                Conv2d(1, 6, 5, rng=rng), ReLU(), MaxPool2d(2),
                Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
                Flatten(),
                Linear(16 * 5 * 5, 120, rng=rng), ReLU(),
                Linear(120, 100, rng=rng), ReLU(),
                Linear(100, 10, rng=rng), ReLU(),
            ])
            """,
            hint="no ReLU after the last FC layer",
        ),
        WrongAnswer(
            "mean pooling",
            """
            from cnnlib.layers import AvgPool2d
            return Sequential([
                Conv2d(1, 6, 5, rng=rng), ReLU(), AvgPool2d(2),
                Conv2d(6, 16, 5, rng=rng), ReLU(), AvgPool2d(2),""" + _LENET_TAIL,
            hint="MAX pooling",
        ),
        WrongAnswer(
            "rng not passed to the FC layers",
            """
            return Sequential([
                Conv2d(1, 6, 5, rng=rng), ReLU(), MaxPool2d(2),
                Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
                Flatten(),
                Linear(16 * 5 * 5, 120), ReLU(),
                Linear(120, 100), ReLU(),
                Linear(100, 10),
            ])
            """,
            hint="pass rng=rng",
        ),
        WrongAnswer(
            "calls cnnlib's lenet",
            "return lenet(rng)",
            hint="cnnlib's reference",
        ),
    ],
    2: [  # sgd_momentum_step: the region is the body of `for p, v in zip(params, velocities):`
        WrongAnswer(
            "momentum applied in the wrong order",
            """
            p.data -= lr * v
            v *= momentum
            v += p.grad
            """,
            hint="OLD velocity",
        ),
        WrongAnswer(
            "p.data rebound instead of updated in place",
            """
            v *= momentum
            v += p.grad
            p.data = p.data - lr * v
            """,
            hint="rebinds p.data",
        ),
        WrongAnswer(
            "velocity bound to a new local array",
            """
            v = momentum * v + p.grad
            p.data -= lr * v
            """,
            hint="still all zeros",
        ),
        WrongAnswer(
            "plain SGD",
            "p.data -= lr * p.grad",
            hint="still all zeros",
        ),
        WrongAnswer(
            "dampened momentum",
            """
            v *= momentum
            v += (1 - momentum) * p.grad
            p.data -= lr * v
            """,
            hint="(1 - momentum)",
        ),
        WrongAnswer(
            "lr inside the velocity (CS231n's form)",
            """
            v *= momentum
            v -= lr * p.grad
            p.data += v
            """,
            hint="CS231n",
        ),
        WrongAnswer(
            "up the gradient",
            """
            v *= momentum
            v += p.grad
            p.data += lr * v
            """,
            hint="DESCENT",
        ),
    ],
    3: [  # train_epoch: the region follows `losses = []` and precedes `return losses`
        WrongAnswer(
            "forgot zero_grad",
            """
            order = rng.permutation(len(X))
            for start in range(0, len(X), batch_size):
                idx = order[start:start + batch_size]
                loss, dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
                model.backward(dlogits)
                optimizer.step()
                losses.append(float(loss))
            """,
            hint="ACCUMULATE",
        ),
        WrongAnswer(
            "no shuffling",
            """
            order = np.arange(len(X))
            for start in range(0, len(X), batch_size):
                idx = order[start:start + batch_size]
                optimizer.zero_grad()
                loss, dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
                model.backward(dlogits)
                optimizer.step()
                losses.append(float(loss))
            """,
            hint="shuffled order",
        ),
        WrongAnswer(
            "shuffling with the global rng",
            """
            order = np.random.permutation(len(X))
            for start in range(0, len(X), batch_size):
                idx = order[start:start + batch_size]
                optimizer.zero_grad()
                loss, dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
                model.backward(dlogits)
                optimizer.step()
                losses.append(float(loss))
            """,
            hint="not with np.random",
        ),
        WrongAnswer(
            "last partial batch dropped",
            """
            order = rng.permutation(len(X))
            for start in range(0, len(X) - batch_size + 1, batch_size):
                idx = order[start:start + batch_size]
                optimizer.zero_grad()
                loss, dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
                model.backward(dlogits)
                optimizer.step()
                losses.append(float(loss))
            """,
            hint="last, smaller batch",
        ),
        WrongAnswer(
            "zero_grad between backward and step",
            """
            order = rng.permutation(len(X))
            for start in range(0, len(X), batch_size):
                idx = order[start:start + batch_size]
                loss, dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
                model.backward(dlogits)
                optimizer.zero_grad()
                optimizer.step()
                losses.append(float(loss))
            """,
            hint="wipes the gradients",
        ),
        WrongAnswer(
            "returns the mean loss",
            """
            order = rng.permutation(len(X))
            for start in range(0, len(X), batch_size):
                idx = order[start:start + batch_size]
                optimizer.zero_grad()
                loss, dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
                model.backward(dlogits)
                optimizer.step()
                losses.append(float(loss))
            return float(np.mean(losses))
            """,
            hint="not their mean",
        ),
        WrongAnswer(
            "calls fit",
            "return fit(model, optimizer, X, y, epochs=1, batch_size=batch_size, rng=rng).history['loss']",
            hint="cnnlib's reference",
        ),
    ],
    4: [  # evaluate_predictions: the region follows `pred = logits.argmax(axis=1)`
        WrongAnswer(
            "accuracy from the logits' max value",
            """
            accuracy = float(np.mean(logits.max(axis=1) == y))
            matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
            np.add.at(matrix, (y, pred), 1)
            """,
            hint="VALUE",
        ),
        WrongAnswer(
            "confusion matrix transposed",
            """
            accuracy = float(np.mean(pred == y))
            matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
            np.add.at(matrix, (pred, y), 1)
            """,
            hint="transposed",
        ),
        WrongAnswer(
            "accuracy as a count",
            """
            accuracy = int(np.sum(pred == y))
            matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
            np.add.at(matrix, (y, pred), 1)
            """,
            hint="NUMBER of correct",
        ),
        WrongAnswer(
            "cells set to 1 instead of counted",
            """
            accuracy = float(np.mean(pred == y))
            matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
            matrix[y, pred] = 1
            """,
            hint="COUNT the examples",
        ),
        WrongAnswer(
            "float counts",
            """
            accuracy = float(np.mean(pred == y))
            matrix = np.zeros((num_classes, num_classes))
            np.add.at(matrix, (y, pred), 1)
            """,
            hint="dtype=np.int64",
        ),
        WrongAnswer(
            "calls cnnlib.viz.confusion_matrix",
            """
            accuracy = float(np.mean(pred == y))
            matrix = viz.confusion_matrix(y, pred, num_classes)
            """,
            hint="cnnlib's reference",
        ),
    ],
    5: [  # most_confident_mistakes
        WrongAnswer(
            "right answers included",
            "return np.argsort(-probs.max(axis=1))[:k]",
            hint="got RIGHT",
        ),
        WrongAnswer(
            "least confident first",
            """
            wrong = np.flatnonzero(probs.argmax(axis=1) != y)
            return wrong[np.argsort(probs.max(axis=1)[wrong])][:k]
            """,
            hint="LEAST confident",
        ),
        WrongAnswer(
            "confidence of the true class",
            """
            wrong = np.flatnonzero(probs.argmax(axis=1) != y)
            return wrong[np.argsort(-probs[wrong, y[wrong]])][:k]
            """,
            hint="TRUE class",
        ),
        WrongAnswer(
            "positions among the mistakes",
            """
            wrong = np.flatnonzero(probs.argmax(axis=1) != y)
            return np.argsort(-probs.max(axis=1)[wrong])[:k]
            """,
            hint="positions in the list of mistakes",
        ),
    ],
    6: [  # train_lenet: the region builds `model` and `history`; `return model, history` follows
        WrongAnswer(
            "too little training (one epoch of slow SGD)",
            """
            model = lenet(rng)
            history = fit(model, SGD(model.parameters(), lr=0.01), X, y, epochs=1, batch_size=64,
                          validation_data=(X_val, y_val), rng=rng)
            """,
            hint="train longer",
        ),
        WrongAnswer(
            "trains one model, returns another",
            """
            model = lenet(rng)
            trained = lenet(rng)
            history = fit(trained, Adam(trained.parameters(), lr=2e-3), X, y, epochs=5, batch_size=32,
                          validation_data=(X_val, y_val), rng=rng)
            """,
            hint="did the training run on the returned model",
            not_hint=("far too large", "the net died"),
        ),
        WrongAnswer(
            "learning rate far too large",
            """
            model = lenet(rng)
            history = fit(model, Adam(model.parameters(), lr=0.5), X, y, epochs=2, batch_size=32,
                          validation_data=(X_val, y_val), rng=rng)
            """,
            hint="a learning rate far too large",
            not_hint=("no better than guessing",),
        ),
    ],
}
