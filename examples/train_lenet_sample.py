"""Train the seeds' LeNet on the MNIST sample shipped with cnnlib (offline, about half a minute).

    python examples/train_lenet_sample.py [--epochs 5] [--full] [--save lenet.npz] [--plot curves.png]

``--full`` uses the full MNIST (downloaded once and cached) instead of the 4,000-image sample.
"""

from __future__ import annotations

import argparse

import numpy as np

from cnnlib.datasets import load_mnist
from cnnlib.model import lenet
from cnnlib.optim import Adam
from cnnlib.train import evaluate, fit


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="full MNIST instead of the sample")
    parser.add_argument("--save", help="write the trained weights to this .npz file")
    parser.add_argument("--plot", help="write the learning curves to this image file")
    args = parser.parse_args(argv)

    (X_train, y_train), (X_test, y_test) = load_mnist("full" if args.full else "sample")
    rng = np.random.default_rng(args.seed)
    model = lenet(rng)
    print(model.summary((1, 28, 28)))
    history = fit(model, Adam(model.parameters(), lr=args.lr), X_train, y_train, epochs=args.epochs,
                  batch_size=args.batch_size, validation_data=(X_test, y_test), rng=rng)
    result = evaluate(model, X_test, y_test)
    print(f"test loss {result['loss']:.4f}, test accuracy {result['accuracy']:.4f} "
          f"({len(X_train):,} training images, {len(X_test):,} test images)")
    if args.save:
        model.save(args.save)
        print(f"weights saved to {args.save}")
    if args.plot:
        history.plot().savefig(args.plot, dpi=100)
        print(f"learning curves saved to {args.plot}")


if __name__ == "__main__":
    main()
