"""Load a Hugging Face encoder checkpoint of a supported family (families.py) safely, as its base encoder.

Safe by default: safetensors weights only (pickle needs ``allow_pickle``), never
``trust_remote_code``, and every encoder weight must come from the checkpoint (a
missing weight would otherwise be randomly initialised without an error).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runtime.manifest import GraphInput
from .errors import ExportError
from .families import Family, family_of

log = logging.getLogger("layerwise.export")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
IGNORED_MISSING = ("pooler.",)  # the pooler does not touch hidden states
POOLING_MODES = (("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"), ("pooling_mode_max_tokens", "max"))


@dataclass
class Checkpoint:
    """A loaded encoder with everything the bundle records about where it came from."""

    source: str
    local_path: str | None
    revision: str | None
    config: Any  # transformers.PretrainedConfig
    model: Any  # torch.nn.Module: the family's base model (BertModel, RobertaModel, ...), eval mode, eager attention
    tokenizer: Any  # a fast tokenizer
    default_pooling: dict[str, Any]

    @property
    def model_type(self) -> str:
        return self.config.model_type

    @property
    def family(self) -> Family:
        return family_of(self.model_type)

    @property
    def inputs(self) -> tuple[GraphInput, ...]:
        """The inputs the traced graph takes (and the PyTorch reference is fed)."""
        return self.family.inputs(self.config)

    @property
    def pad_token_id(self) -> int:
        """The id the tokenizer pads with (RoBERTa-style graphs place padding by it)."""
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0

    @property
    def num_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def max_length(self) -> int:
        limit = self.family.max_positions(self.config)
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < limit:
            limit = tokenizer_limit
        return limit


def _is_local(source: str) -> bool:
    if Path(source).expanduser().exists():
        return True
    if not HUB_ID.match(source):
        raise ExportError(
            f"source {source!r} does not exist. Give a local Hugging Face model folder (with config.json) "
            "or a hub id such as 'bert-base-uncased' or 'org/name'"
        )
    return False


def _check_local_folder(folder: Path, allow_pickle: bool) -> None:
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ExportError(f"{str(folder)!r} is not a Hugging Face model folder: it has no config.json")
    safetensors = list(folder.glob("*.safetensors"))
    pickles = [p for p in folder.glob("*.bin")] + [p for p in folder.glob("*.pt")]
    if not safetensors and not pickles:
        raise ExportError(f"{str(folder)!r} holds no weights (no *.safetensors or pytorch_model.bin)")
    if not safetensors and not allow_pickle:
        raise ExportError(
            f"{str(folder)!r} has only pickle weights ({pickles[0].name}); loading pickle can run arbitrary code. "
            "Convert the checkpoint to safetensors, or pass --allow-pickle if you trust its origin"
        )


def _load_config(source: str) -> Any:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except Exception as e:
        raise ExportError(
            f"could not read the model config of {source!r} ({type(e).__name__}: {e}). For a hub id, check the "
            "name and your network (offline machines need a local folder)"
        ) from e
    family_of(config.model_type, getattr(config, "architectures", None))  # refuses unsupported families, listing them
    return config


def _load_model(source: str, config: Any, allow_pickle: bool) -> Any:
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar for a load of seconds, on every export: noise beside our own output
    try:
        model, info = AutoModel.from_pretrained(
            source,
            config=config,
            attn_implementation="eager",  # SDPA graphs defeat ONNX Runtime's attention fusion
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=False,
            output_loading_info=True,
        )
    except Exception as e:
        hint = (
            "the weights file is corrupt or truncated: re-download or re-save it"
            if "safetensors" in f"{type(e).__module__} {e}".lower() or "deserializ" in str(e).lower()
            else "check that the folder holds a complete checkpoint"
        )
        raise ExportError(f"could not load the weights of {source!r}: {type(e).__name__}: {e} ({hint})") from e
    missing = [k for k in info.get("missing_keys", []) if not k.startswith(IGNORED_MISSING)]
    if missing:
        raise ExportError(
            f"the checkpoint {source!r} lacks {len(missing)} encoder weight(s), e.g. {missing[:3]}; exporting would "
            "use random values. Use a complete checkpoint"
        )
    return model.float().eval()


def _load_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except Exception as e:
        raise ExportError(
            f"could not load the tokenizer of {source!r} ({type(e).__name__}: {e}); ALBERT's SentencePiece "
            "tokenizer needs the 'sentencepiece' and 'protobuf' packages to convert"
        ) from e
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError(f"the tokenizer of {source!r} has no fast (tokenizers) version; layerwise bundles need tokenizer.json")
    return tokenizer


def _read_json(source: str, local_path: str | None, name: str) -> Any | None:
    """A JSON file of the checkpoint, or None if it has none (network errors count as none)."""
    try:
        if local_path is not None:
            path = Path(local_path) / name
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(source, name)).read_text(encoding="utf-8"))
    except Exception:
        return None


def default_pooling(source: str, local_path: str | None) -> dict[str, Any]:
    """The pooling a sentence-transformers checkpoint declares (modules.json); else mean, unnormalised."""
    modules = _read_json(source, local_path, "modules.json") or []
    pooling = next((m for m in modules if str(m.get("type", "")).endswith("models.Pooling")), None)
    if pooling is None:
        return {"pool": "mean", "normalize": False, "source": "default (no sentence-transformers pooling config)"}
    config_name = f"{pooling.get('path', '')}/config.json".lstrip("/")
    config = _read_json(source, local_path, config_name) or {}
    pool = next((name for key, name in POOLING_MODES if config.get(key)), None)
    normalize = any(str(m.get("type", "")).endswith("models.Normalize") for m in modules)
    record = {"pool": pool or "mean", "normalize": normalize, "source": f"sentence-transformers {config_name}"}
    others = sorted(k for k, v in config.items() if k.startswith("pooling_mode") and v and k not in dict(POOLING_MODES))
    known = ("models.Transformer", "models.Pooling", "models.Normalize")
    extra = [str(m.get("type")) for m in modules if not str(m.get("type", "")).endswith(known)]
    if pool is None or others or extra:
        record["note"] = (
            f"the checkpoint's pipeline also uses {', '.join(others + extra)}, which layerwise does not reproduce; "
            "pooled vectors will differ from sentence-transformers'"
        )
        log.warning("%s: %s", source, record["note"])
    return record


def load_checkpoint(source: str, allow_pickle: bool = False) -> Checkpoint:
    """Load the base encoder, tokenizer and pooling default of a local folder or hub id."""
    local = _is_local(source)
    local_path = str(Path(source).expanduser().resolve()) if local else None
    if local_path is not None:
        _check_local_folder(Path(local_path), allow_pickle)
    config = _load_config(source if local_path is None else local_path)
    model = _load_model(source if local_path is None else local_path, config, allow_pickle)
    tokenizer = _load_tokenizer(source if local_path is None else local_path)
    return Checkpoint(
        source=source,
        local_path=local_path,
        revision=getattr(config, "_commit_hash", None),
        config=config,
        model=model,
        tokenizer=tokenizer,
        default_pooling=default_pooling(source, local_path),
    )
