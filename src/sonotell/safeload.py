"""Load ``.pt`` / ``.ckpt`` files without running code from them.

``torch.load`` of a pickle can execute anything the file says. sonotell only ever loads with
``weights_only=True``: tensors, numbers, strings, lists and dicts. A file that needs more (an old
checkpoint pickling Python objects, or a crafted one) is refused with a message that says how
to convert it from code the user trusts (see docs/security.md).
"""

from __future__ import annotations

import pickle
import re
import sys
from pathlib import Path
from typing import Any

from sonotell.errors import InputError

TRUST_FLAG = "--trust-this-file"
CONVERT_HINT = (
    "only if you trust where this file came from (converting runs its code), convert it once with "
    f"`python -m sonotell.safeload convert {TRUST_FLAG} OLD.pt NEW.pt` (see docs/security.md)"
)
TRUST_MEANING = (
    "converting unpickles {src}: any code the file carries runs now, with your permissions. "
    "Pass {flag} only for a file whose origin you trust (your own old checkpoint, a colleague's you can vouch for)."
)


def load_weights_only(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; ``InputError`` for a missing, unreadable or pickled file.

    A file that is no PyTorch checkpoint at all (neither torch's zip archive nor its legacy format)
    is "unreadable" without being unpickled at all; one that pickles Python objects is "refused" with how to convert it.

    Example:
        >>> state = load_weights_only("model.pt")  # doctest: +SKIP
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError(path, "checkpoint not found")
    if not is_torch_file(path):
        raise InputError(path, NOT_TORCH)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(e))
        what = f"it names {found.group(1)}" if found else "an object weights-only loading does not accept"
        raise InputError(
            path,
            f"refused: the checkpoint holds Python objects beyond tensors and plain data ({what}); {CONVERT_HINT}",
        ) from None
    except Exception as e:  # noqa: BLE001  (truncated zip, not a torch file, ...)
        raise InputError(path, f"unreadable checkpoint ({e.__class__.__name__}: {_first_line(e)})") from None


NOT_TORCH = "unreadable checkpoint (not a PyTorch file: neither torch.save's zip archive nor its legacy format)"
# torch.save writes a zip archive; before PyTorch 1.6 it wrote pickles that start with this magic number
_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"


def is_torch_file(path: str | Path) -> bool:
    """Whether ``path`` starts like a file ``torch.save`` wrote (read, never unpickled)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LEGACY_MAGIC))
    except OSError:
        return False
    return head.startswith(_ZIP_MAGIC) or head == _LEGACY_MAGIC


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

    ``dst`` must not be ``src`` (nor a link to it): the original stays as it was. A missing or
    unreadable ``src`` is an ``InputError``.

    Example:
        >>> convert_trusted("old.pt", "new.pt")  # doctest: +SKIP
    """
    import torch

    from sonotell.files import atomic_path, refuse_overwriting_inputs

    src, dst = Path(src), Path(dst)
    refuse_overwriting_inputs([dst], [src])
    if not src.is_file():
        raise InputError(src, "checkpoint not found" if not src.exists() else "not a file")
    if not is_torch_file(src):
        raise InputError(src, NOT_TORCH)
    try:
        raw = torch.load(src, map_location="cpu", weights_only=False)  # explicit: the user vouches for src
    except Exception as e:  # noqa: BLE001  (garbage, truncated zip, not a torch file)
        raise InputError(src, f"unreadable checkpoint ({e.__class__.__name__}: {_first_line(e)})") from None
    with atomic_path(dst) as tmp:
        torch.save(plain(raw), tmp)
    load_weights_only(dst)  # the result must load safely
    return dst


def _first_line(e: BaseException) -> str:
    return next((line.strip() for line in str(e).splitlines() if line.strip()), "no detail")


USAGE = f"usage: python -m sonotell.safeload convert {TRUST_FLAG} OLD.pt NEW.pt"


def _main(argv: list[str]) -> int:
    """``convert [--trust-this-file] OLD NEW``: 0 when written or nothing to do, 2 with one ``error:`` line else."""
    from sonotell.errors import SonotellError
    from sonotell.files import refuse_overwriting_inputs

    trusted = TRUST_FLAG in argv
    args = [a for a in argv if a != TRUST_FLAG]
    if len(args) != 3 or args[0] != "convert" or any(a.startswith("-") for a in args[1:]):
        print(USAGE, file=sys.stderr)
        print("  rewrites an old pickled checkpoint as one sonotell loads without running code", file=sys.stderr)
        return 2
    src, dst = Path(args[1]), Path(args[2])
    try:
        refuse_overwriting_inputs([dst], [src])
        if not src.is_file():
            raise InputError(src, "checkpoint not found" if not src.exists() else "not a file")
        try:
            load_weights_only(src)
        except InputError as e:
            if not e.problem.startswith("refused"):
                raise  # garbage or truncated: nothing to convert, and nothing of it is unpickled
        else:
            print(f"{src}: already loads without running code; nothing to convert (nothing written)")
            return 0
        if not trusted:
            raise InputError(
                src,
                f"not converted: {TRUST_MEANING.format(src=src, flag=TRUST_FLAG)} "
                f"If you do: python -m sonotell.safeload convert {TRUST_FLAG} {src} {dst}",
            )
        print(f"warning: {TRUST_MEANING.format(src=src, flag=TRUST_FLAG)} You passed {TRUST_FLAG}.", file=sys.stderr)
        print(f"wrote {convert_trusted(src, dst)}")
        return 0
    except SonotellError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
