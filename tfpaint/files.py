"""Writing files so that a reader sees the old file or the new one, never half.

Every file tfpaint writes for people or programs to read while a run goes on
(configs, metrics, progress pictures, SVGs, exported models' side files) goes
through `atomic_write`.
"""

import os


def atomic_write(path, data):
    """Writes `data` to `path` atomically, creating the directory if needed.

    The data goes to a temporary file beside `path` and is then renamed over
    it (`os.replace`, atomic on POSIX within one file system), so a killed
    process leaves either the previous file or the complete new one.

    Args:
        path: the file to write.
        data: `str` (written as UTF-8) or `bytes`.

    Returns:
        The absolute path written.

    Raises:
        TypeError: if `data` is neither `str` nor `bytes`.
    """
    if not isinstance(data, (str, bytes, bytearray)):
        raise TypeError(
            f"`data` must be str or bytes. Received: {type(data).__name__}"
        )
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        if isinstance(data, str):
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(data)
        else:
            with open(tmp, "wb") as f:
                f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
