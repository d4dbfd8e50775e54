"""Load ``.pt`` / ``.ckpt`` files without running code from them.

``torch.load`` of a pickle can execute anything the file says. sonotell only ever loads with
``weights_only=True``: tensors, numbers, strings, lists and dicts. A file that needs more (an old
checkpoint pickling Python objects, or a crafted one) is refused with a message that says how
to convert it from code the user trusts (see docs/security.md).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from sonotell.errors import InputError

CONVERT_HINT = (
    "if you trust this file, convert it once with "
    "`python -m sonotell.safeload convert OLD.pt NEW.pt` (see docs/security.md)"
)


def load_weights_only(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; ``InputError`` for a missing, unreadable or pickled file.

    Example:
        >>> state = load_weights_only("model.pt")  # doctest: +SKIP
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError(path, "checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsupported object"
        raise InputError(
            path,
            f"refused: the checkpoint holds Python objects beyond tensors and plain data ({first}); {CONVERT_HINT}",
        ) from None
    except Exception as e:  # noqa: BLE001  (truncated zip, not a torch file, ...)
        raise InputError(path, f"unreadable checkpoint ({e.__class__.__name__}: {e})") from None


def plain(obj: Any) -> Any:
    """``obj`` reduced to what ``weights_only`` loading accepts: tensors, numbers, strings, lists, dicts."""
    import numpy as np
    import torch

    if torch.is_tensor(obj) or obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, (int, str)) else k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "items"):  # AttributeDict and other mappings
        return {str(k): plain(v) for k, v in obj.items()}
    return repr(obj)


def convert_trusted(src: str | Path, dst: str | Path) -> Path:
    """Rewrite an old pickled checkpoint as a weights-only one. Runs the file's code: trusted files only.

    Example:
        >>> convert_trusted("old.pt", "new.pt")  # doctest: +SKIP
    """
    import torch

    from sonotell.files import atomic_path

    raw = torch.load(Path(src), map_location="cpu", weights_only=False)  # explicit: the user vouches for src
    with atomic_path(dst) as tmp:
        torch.save(plain(raw), tmp)
    load_weights_only(dst)  # the result must load safely
    return Path(dst)


def _main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "convert":
        print("usage: python -m sonotell.safeload convert OLD.pt NEW.pt   (runs OLD.pt's code: trusted files only)")
        return 2
    print(f"wrote {convert_trusted(argv[1], argv[2])}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
