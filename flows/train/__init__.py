"""Training on a dataset: the masked loss, the U-Net, augmentation, ``rga train`` and
``rga predict``. Needs the optional extra ``rga[train]`` (PyTorch and MONAI); nothing outside
this package imports torch."""

AUGMENTATIONS = ("none", "intensity", "geometric")  # here so the CLI lists them without torch
INSTALL_HINT = "PyTorch and MONAI are needed: pip install 'radgenome-anatomy[train]'"


class MissingExtra(ImportError):
    """torch or MONAI is not installed; the message says how to install them."""


def require_torch() -> None:
    """Raise MissingExtra with the install command if torch or MONAI is missing."""
    try:
        import monai  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise MissingExtra(f"{INSTALL_HINT} ({error})") from None
