"""Train the small byte-level BPE tokenizer that the tiny presets use, and write it to the package assets.

The corpus is what a SpatialLM model reads and writes: layout-language lines with integer bins (0..num_bins-1),
the 59 class names, the code template, the task prompts and the chat framing words. A vocabulary of ~2k is enough
for every bin number and class name to come out as one or two tokens, so tiny models see short sequences.

    python scripts/build_tokenizer.py            # writes spatialvlm_cli/assets/tokenizer/
    python scripts/build_tokenizer.py --check    # rebuilds in memory and fails if the committed files differ

The output is deterministic (seeded corpus, deterministic BPE trainer).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from spatialvlm_cli.model.prompt import CATEGORIES, DETECT_TYPE_PROMPTS, QWEN_SYSTEM_MESSAGE, code_template, task_prompt
from spatialvlm_cli.model.tokenizer import NEUTRAL_EOS_TOKEN, SPECIAL_TOKENS

log = logging.getLogger("build_tokenizer")

OUTPUT_DIR = Path(__file__).resolve().parents[1] / "spatialvlm_cli" / "assets" / "tokenizer"
VOCAB_SIZE = 2048
NUM_BINS = 1280
NUM_SCENES = 4000
SEED = 0


def _bins(rng: random.Random, count: int) -> str:
    return ",".join(str(rng.randrange(NUM_BINS)) for _ in range(count))


def layout_text(rng: random.Random) -> str:
    """One random scene in SpatialLM's layout language (integer bins), lines in upstream's order."""
    lines = []
    num_walls = rng.randint(3, 10)
    lines += [f"wall_{i}=Wall({_bins(rng, 8)})" for i in range(num_walls)]
    for label, cls in (("door", "Door"), ("window", "Window")):
        count = rng.randint(0, 5)
        lines += [f"{label}_{i}={cls}(wall_{rng.randrange(num_walls)},{_bins(rng, 5)})" for i in range(count)]
    lines += [f"bbox_{i}=Bbox({rng.choice(CATEGORIES)},{_bins(rng, 7)})" for i in range(rng.randint(0, 25))]
    return "\n".join(lines)


def prompt_texts(rng: random.Random) -> list[str]:
    """Task prompts (with random category subsets), the code template and the chat framing words."""
    texts = [code_template(), QWEN_SYSTEM_MESSAGE, "system\n", "user\n", "assistant\n", "\n\n"]
    for detect_type in DETECT_TYPE_PROMPTS:
        texts.append(task_prompt(detect_type) + " The reference code is as followed: ")
        for _ in range(50):
            texts.append(task_prompt(detect_type, rng.sample(CATEGORIES, rng.randint(1, 6))))
    return texts


def corpus(seed: int = SEED, num_scenes: int = NUM_SCENES) -> Iterator[str]:
    rng = random.Random(seed)
    # The prompts are rare next to layout lines; repeat them so their words still earn merges.
    for _ in range(20):
        yield from prompt_texts(rng)
    for _ in range(num_scenes):
        yield layout_text(rng)


def train(vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=NEUTRAL_EOS_TOKEN,  # saved chat-neutral: `model.tokenizer.apply_chat_format` sets eos/bos/template
        pad_token=NEUTRAL_EOS_TOKEN,
        extra_special_tokens=[t for t in SPECIAL_TOKENS if t != NEUTRAL_EOS_TOKEN],
        padding_side="left",
        model_max_length=32768,
    )


def _saved_files(tokenizer: PreTrainedTokenizerFast, directory: Path) -> dict[str, str]:
    tokenizer.save_pretrained(directory)
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(directory.iterdir())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help="Folder to write (default: package assets).")
    parser.add_argument("--check", action="store_true", help="Fail if the committed tokenizer differs from a rebuild.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    tokenizer = train()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            rebuilt = _saved_files(tokenizer, Path(tmp))
        committed = {path.name: path.read_text(encoding="utf-8") for path in sorted(args.output.iterdir())}
        if rebuilt != committed:
            log.error("'%s' differs from a rebuild: run scripts/build_tokenizer.py", args.output)
            return 1
        log.info("'%s' matches a rebuild", args.output)
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    files = _saved_files(tokenizer, args.output)
    vocab = json.loads(files["tokenizer.json"])["model"]["vocab"]
    log.info("wrote %s (%d tokens incl. %d special): %s", args.output, len(tokenizer), len(SPECIAL_TOKENS), list(files))
    log.info("BPE vocab %d", len(vocab))
    return 0


if __name__ == "__main__":
    sys.exit(main())
