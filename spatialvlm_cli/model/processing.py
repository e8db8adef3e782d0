"""Processor: point clouds + a detect request -> `input_ids`, `attention_mask`, `point_clouds` for the model.

It builds SpatialLM's conversation (see `prompt.py`), renders it with the tokenizer's chat template and
`add_generation_prompt=True`, and expands the single `<|point_pad|>` into as many ids as the encoder will emit
tokens for that cloud (counted cheaply, without weights, by `spatialvlm_cli.encoders.output_grid_coords`).
Batches are left-padded, as generation needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from spatialvlm_cli.encoders import output_grid_coords
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model.points import split_point_clouds
from spatialvlm_cli.model.prompt import POINT_END_TOKEN, POINT_PAD_TOKEN, POINT_START_TOKEN, conversation

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from spatialvlm_cli.model.config import SpatialLMLlamaConfig, SpatialLMQwenConfig


class SpatialLMProcessor:
    """Turns point clouds into model inputs for one SpatialLM-style model.

    tokenizer: the checkpoint's tokenizer (with its chat template).
    config: the model config (model_type, point_backbone, point_config, point token ids).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: SpatialLMQwenConfig | SpatialLMLlamaConfig) -> None:
        if tokenizer.chat_template is None:
            raise ConfigError("the tokenizer has no chat template; SpatialLM prompts need one")
        self.tokenizer = tokenizer
        self.config = config
        ids = tokenizer.convert_tokens_to_ids([POINT_START_TOKEN, POINT_PAD_TOKEN, POINT_END_TOKEN])
        expected = [config.point_start_token_id, config.point_token_id, config.point_end_token_id]
        if ids != expected:
            raise ConfigError(
                f"tokenizer ids of {POINT_START_TOKEN}, {POINT_PAD_TOKEN}, {POINT_END_TOKEN} are {ids} but the model "
                f"config expects {expected}"
            )
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad_id is None:
            raise ConfigError("the tokenizer has neither a pad nor an eos token to left-pad batches with")
        self.pad_token_id = int(pad_id)

    def prompt_text(self, detect_type: str = "all", categories: Sequence[str] = ()) -> str:
        """The chat-templated prompt with one point placeholder, ending with the assistant header."""
        messages = conversation(self.config.model_type, detect_type, tuple(categories))
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def prompt_ids(self, detect_type: str = "all", categories: Sequence[str] = ()) -> list[int]:
        """Token ids of `prompt_text`; the point block is exactly start, pad, end."""
        ids = self.tokenizer(self.prompt_text(detect_type, categories), add_special_tokens=False)["input_ids"]
        block = [self.config.point_start_token_id, self.config.point_token_id, self.config.point_end_token_id]
        starts = [i for i, token in enumerate(ids) if token == block[0]]
        if len(starts) != 1 or ids[starts[0] : starts[0] + 3] != block or ids.count(block[1]) != 1:
            raise ConfigError("the chat template must keep the point placeholder intact exactly once")
        return ids

    def num_point_tokens(self, clouds: list[Tensor]) -> list[int]:
        """Encoder tokens per cloud (M_i) for clouds of (N_i, 9) rows; no weights are run."""
        grid_coord = torch.cat([cloud[:, :3] for cloud in clouds]).long()
        offset = torch.cumsum(torch.tensor([len(cloud) for cloud in clouds]), dim=0)
        _, out_offset = output_grid_coords(self.config.point_backbone, self.config.point_config, grid_coord, offset)
        return torch.diff(out_offset, prepend=out_offset.new_zeros(1)).tolist()

    def __call__(
        self,
        point_clouds: Tensor | list[Tensor],
        detect_type: str = "all",
        categories: Sequence[str] = (),
    ) -> dict[str, Tensor | list[Tensor]]:
        """Model inputs for a batch of clouds, all asked the same question.

        point_clouds: list of B (N_i, 9) float32 rows or a (B, N, 9) tensor padded with NaN rows.
        detect_type: 'all' | 'arch' | 'object'; categories: SpatialLM class names replacing 'boxes'.
        Returns input_ids (B, L) int64 (left-padded, M_i point-pad ids per row), attention_mask (B, L) int64,
        point_clouds: list of B (N_i, 9) float32 (NaN rows dropped). Raises ConfigError for a bad request."""
        prompt = self.prompt_ids(detect_type, categories)
        clouds = split_point_clouds(point_clouds)
        placeholder = prompt.index(self.config.point_token_id)
        rows = [
            prompt[:placeholder] + [self.config.point_token_id] * count + prompt[placeholder + 1 :]
            for count in self.num_point_tokens(clouds)
        ]
        length = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for index, row in enumerate(rows):
            input_ids[index, length - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[index, length - len(row) :] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "point_clouds": clouds}
