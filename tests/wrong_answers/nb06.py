"""Typical wrong solutions of notebook 06_batchnorm (format: tests/wrong_answers/__init__.py)."""

from wrong_answers import WrongAnswer

ASSIGNMENT = "06_batchnorm"

WRONG = {
    1: [  # exercise 6.1: batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)
        WrongAnswer(
            "unbiased variance used for normalizing",
            """
            mean = x.mean(axis=0)
            var = x.var(axis=0, ddof=1)
            out = gamma * (x - mean) / np.sqrt(var + eps) + beta
            new_mean = (1 - momentum) * running_mean + momentum * mean
            new_var = (1 - momentum) * running_var + momentum * var
            """,
            hint="UNBIASED variance (divided by N - 1)",
        ),
        WrongAnswer(
            "biased variance stored as running variance",
            """
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            out = gamma * (x - mean) / np.sqrt(var + eps) + beta
            new_mean = (1 - momentum) * running_mean + momentum * mean
            new_var = (1 - momentum) * running_var + momentum * var
            """,
            hint="running_var must average in the UNBIASED",
        ),
        WrongAnswer(
            "momentum in the wrong direction",
            """
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            out = gamma * (x - mean) / np.sqrt(var + eps) + beta
            new_mean = momentum * running_mean + (1 - momentum) * mean
            new_var = momentum * running_var + (1 - momentum) * var * N / (N - 1)
            """,
            hint="the new batch gets the weight momentum",
        ),
        WrongAnswer(
            "statistics over the features (axis 1)",
            """
            mean = x.mean(axis=1)
            var = x.var(axis=1)
            out = gamma * (x - mean) / np.sqrt(var + eps) + beta
            new_mean = (1 - momentum) * running_mean + momentum * mean
            new_var = (1 - momentum) * running_var + momentum * var * N / (N - 1)
            """,
            hint="one value per SAMPLE",
        ),
        WrongAnswer(
            "statistics over axis 1 with keepdims (no known hint)",
            """
            mean = x.mean(axis=1, keepdims=True)
            var = x.var(axis=1, keepdims=True)
            out = gamma * (x - mean) / np.sqrt(var + eps) + beta
            new_mean = (1 - momentum) * running_mean + momentum * mean
            new_var = (1 - momentum) * running_var + momentum * var * N / (N - 1)
            """,
            hint=None,
        ),
        WrongAnswer(
            "eps outside the square root",
            """
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            out = gamma * (x - mean) / (np.sqrt(var) + eps) + beta
            new_mean = (1 - momentum) * running_mean + momentum * mean
            new_var = (1 - momentum) * running_var + momentum * var * N / (N - 1)
            """,
            hint="eps goes inside the square root",
        ),
        WrongAnswer(
            "gamma and beta swapped",
            """
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            out = beta * (x - mean) / np.sqrt(var + eps) + gamma
            new_mean = (1 - momentum) * running_mean + momentum * mean
            new_var = (1 - momentum) * running_var + momentum * var * N / (N - 1)
            """,
            hint="gamma and beta are swapped",
        ),
    ],
    2: [  # exercise 6.2: batchnorm_forward(x, gamma, beta, running_mean, running_var, training, ...)
        WrongAnswer(
            "eval mode uses the batch statistics",
            """
            if training:
                return batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)
            x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)
            return gamma * x_hat + beta, running_mean.copy(), running_var.copy()
            """,
            hint="with the BATCH's mean and variance",
        ),
        WrongAnswer(
            "running statistics updated in eval mode",
            """
            if training:
                return batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)
            N = x.shape[0]
            x_hat = (x - running_mean) / np.sqrt(running_var + eps)
            new_mean = (1 - momentum) * running_mean + momentum * x.mean(axis=0)
            new_var = (1 - momentum) * running_var + momentum * x.var(axis=0) * N / max(N - 1, 1)
            return gamma * x_hat + beta, new_mean, new_var
            """,
            hint="must come back unchanged",
        ),
        WrongAnswer(
            "the training flag ignored",
            """
            return batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)
            """,
            hint="you ignore `training`",
        ),
        WrongAnswer(
            "running variance used as a standard deviation",
            """
            if training:
                return batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)
            x_hat = (x - running_mean) / (running_var + eps)
            return gamma * x_hat + beta, running_mean.copy(), running_var.copy()
            """,
            hint="divide by its square root",
        ),
        WrongAnswer(
            "momentum and eps not passed on",
            """
            if training:
                return batchnorm_train(x, gamma, beta, running_mean, running_var)
            x_hat = (x - running_mean) / np.sqrt(running_var + eps)
            return gamma * x_hat + beta, running_mean.copy(), running_var.copy()
            """,
            hint="pass momentum and eps on",
        ),
        WrongAnswer(
            "eps left out in eval mode",
            """
            if training:
                return batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)
            x_hat = (x - running_mean) / np.sqrt(running_var)
            return gamma * x_hat + beta, running_mean.copy(), running_var.copy()
            """,
            hint="did you leave out eps",
        ),
    ],
    3: [  # exercise 6.3: spatial_batchnorm_forward(x, ...) by the reshape to (N*H*W, C)
        WrongAnswer(
            "reshape without moving C last",
            """
            x_2d = x.reshape(-1, C)
            out_2d, new_mean, new_var = batchnorm_forward(x_2d, gamma, beta, running_mean, running_var,
                                                          training, momentum, eps)
            out = out_2d.reshape(N, C, H, W)
            """,
            hint="a plain x.reshape(-1, C)",
        ),
        WrongAnswer(
            "C moved last but not moved back",
            """
            x_2d = x.transpose(0, 2, 3, 1).reshape(-1, C)
            out_2d, new_mean, new_var = batchnorm_forward(x_2d, gamma, beta, running_mean, running_var,
                                                          training, momentum, eps)
            out = out_2d.reshape(N, C, H, W)
            """,
            hint="reshaped straight to",
        ),
        WrongAnswer(
            "the same transpose used to move C back",
            """
            x_2d = x.transpose(0, 2, 3, 1).reshape(-1, C)
            out_2d, new_mean, new_var = batchnorm_forward(x_2d, gamma, beta, running_mean, running_var,
                                                          training, momentum, eps)
            out = out_2d.reshape(N, H, W, C).transpose(0, 2, 3, 1)
            """,
            hint="needs the inverse transpose",
        ),
        WrongAnswer(
            "momentum and eps not passed on",
            """
            x_2d = x.transpose(0, 2, 3, 1).reshape(-1, C)
            out_2d, new_mean, new_var = batchnorm_forward(x_2d, gamma, beta, running_mean, running_var,
                                                          training)
            out = out_2d.reshape(N, H, W, C).transpose(0, 3, 1, 2)
            """,
            hint="pass training, momentum and eps on",
        ),
    ],
    4: [  # exercise 6.4: batchnorm_backward(dout, x, gamma, eps) -> dx, dgamma, dbeta
        WrongAnswer(
            "the backward that forgets the mean terms",
            """
            dbeta = dout.sum(axis=0)
            dgamma = (dout * x_hat).sum(axis=0)
            dx = dout * gamma / np.sqrt(var + eps)
            """,
            hint="treats the batch mean and variance as constants",
        ),
        WrongAnswer(
            "the variance's term forgotten",
            """
            dbeta = dout.sum(axis=0)
            dgamma = (dout * x_hat).sum(axis=0)
            dx_hat = dout * gamma
            dx = (dx_hat - dx_hat.mean(axis=0)) / np.sqrt(var + eps)
            """,
            hint="the mean's term but not the variance's",
        ),
        WrongAnswer(
            "dgamma and dbeta summed over the features",
            """
            dbeta = dout.sum(axis=1)
            dgamma = (dout * x_hat).sum(axis=1)
            dx_hat = dout * gamma
            dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(var + eps)
            """,
            hint="dgamma and dbeta hold one value per FEATURE",
        ),
        WrongAnswer(
            "dgamma and dbeta summed over every axis",
            """
            dbeta = dout.sum()
            dgamma = (dout * x_hat).sum()
            dx_hat = dout * gamma
            dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(var + eps)
            """,
            hint="summed dgamma and dbeta over every axis",
        ),
        WrongAnswer(
            "dgamma from x instead of x_hat",
            """
            dbeta = dout.sum(axis=0)
            dgamma = (dout * x).sum(axis=0)
            dx_hat = dout * gamma
            dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(var + eps)
            """,
            hint="gamma multiplies the NORMALIZED",
        ),
        WrongAnswer(
            "dx without the factor gamma",
            """
            dbeta = dout.sum(axis=0)
            dgamma = (dout * x_hat).sum(axis=0)
            dx = (dout - dout.mean(axis=0) - x_hat * (dout * x_hat).mean(axis=0)) / np.sqrt(var + eps)
            """,
            hint="lacks the factor gamma",
        ),
        WrongAnswer(
            "dgamma and dbeta swapped",
            """
            dgamma = dout.sum(axis=0)
            dbeta = (dout * x_hat).sum(axis=0)
            dx_hat = dout * gamma
            dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(var + eps)
            """,
            hint="dgamma and dbeta are swapped",
        ),
    ],
}
