"""The loss of one training step: the layout text, plus the synthetic-room recipe's training-only heads.

* `layout`: the answer's next-token loss (`loss.layout_loss`: ordinal targets for bins where each bin is a token);
* `dense` (dense_weight): per point token, its cell's occupancy and the room extent (`dense.py`), from a linear head
  on the point tokens as the first decoder layer sees them (after its input RMSNorm);
* `wall_offset` (wall_offset_weight): where in its cell each near-wall token's wall runs, from the same head;
* `box` (box_weight): for each token in a box, where that box's centre lies and its size, from a head of its own
  on the same tokens (so a run without it warm-starts one with it);
* `pointer` (pointer_weight): the decoder's last hidden state at every position that writes a box line must point
  at the point tokens that hold that box (`dense.PointerHead`); with pointer_layer, the first attention head of that
  decoder layer must put its attention there instead;
* `read` (read_weight, from read_from_step): the room extent from the decoder's last hidden state at every answer
  position.

Each term is a mean over this process's answer, point or near-wall tokens, weighted by this process's share of the
whole batch's (`Ranks.shares`), so the sum over processes is the one-process loss. The heads are read through
forward hooks on the decoder (`transformers_seam`) and are not part of the saved model: they live in `resume.pt`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spatialvlm_cli import transformers_seam
from spatialvlm_cli.distributed import Ranks
from spatialvlm_cli.encoders import output_grid_coords
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model.loaded import LoadedModel
from spatialvlm_cli.training.data import LayoutExample, PromptMix, answer_token_starts
from spatialvlm_cli.training.dense import (
    EXTENT_SCALE_M,
    DenseHead,
    DenseLabels,
    DenseTargets,
    PointerHead,
    box_loss,
    box_pointer_targets,
    dense_targets,
    labels_from_target_text,
    token_cell_size_m,
)
from spatialvlm_cli.training.loss import IGNORE_INDEX, NumberVocabulary, layout_loss

if TYPE_CHECKING:
    from spatialvlm_cli.training.settings import TrainSettings


class Objective:
    """The loss terms of a step for `loaded`'s model (see the module docstring). settings: a `TrainSettings`
    (sigma_bins and the recipe's weights); numbers: the bins' token ids, None where bins are not single tokens;
    cache_labels: keep each example's dense labels after first use (not when examples are augmented each step)."""

    def __init__(self, settings: TrainSettings, loaded: LoadedModel, mix: PromptMix, numbers: NumberVocabulary | None,
                 cache_labels: bool = True) -> None:
        self.settings = settings
        self.model = loaded.model
        self.mix = mix
        self.numbers = numbers
        self.num_bins = loaded.num_bins
        self.cache_labels = cache_labels
        config = loaded.model.config
        self.cell_size = token_cell_size_m(loaded.num_bins, config.point_config.get("stride", ()))
        dense_head = DenseHead(config.hidden_size, wall_offset=settings.wall_offset_weight > 0) \
            if settings.dense_weight > 0 else None
        read_head = nn.Linear(config.hidden_size, 4) if settings.read_weight > 0 else None
        box_head = nn.Linear(config.hidden_size, 5) if settings.box_weight > 0 else None
        if settings.pointer_layer >= config.num_hidden_layers:
            raise ConfigError(f"pointer_layer {settings.pointer_layer} is not a layer of this "
                              f"{config.num_hidden_layers}-layer decoder")
        pointer_head = PointerHead(config.hidden_size) \
            if settings.pointer_weight > 0 and settings.pointer_layer < 0 else None
        self.dense_head, self.read_head, self.box_head = dense_head, read_head, box_head
        self.pointer_head = pointer_head
        self.heads: dict[str, nn.Module] = {
            name: head for name, head in (("dense_head", dense_head), ("read_head", read_head),
                                          ("box_head", box_head), ("pointer_head", pointer_head)) if head is not None}
        self._labels: dict[int, DenseLabels] = {}  # per example index, built on first use
        self._captured: dict[str, Tensor] = {}
        if dense_head is not None:
            transformers_seam.first_input_norm(self.model.model).register_forward_hook(
                lambda module, args, output: self._captured.__setitem__("normed", output))
        if read_head is not None or settings.pointer_weight > 0:
            transformers_seam.final_norm(self.model.model).register_forward_hook(
                lambda module, args, output: self._captured.__setitem__("final", output))

    def take_captured(self) -> dict[str, Tensor]:
        """The hidden states the heads read, captured in the last forward pass (and forgotten here): 'normed',
        (B, L, H) the first decoder layer's normed input, with a dense head; 'final', (B, L, H) the final norm's
        output, with a read or pointer head."""
        captured = dict(self._captured)
        self._captured.clear()
        return captured

    def dense_labels(self, index: int, example: LayoutExample) -> DenseLabels:
        """The dense labels of dataset example `index` (kept after first use unless examples are augmented)."""
        labels = self._labels.get(index)
        if labels is None:
            labels = labels_from_target_text(self.mix.answer_text(example), self.num_bins, self.cell_size)
            if self.cache_labels:
                self._labels[index] = labels
        return labels

    def token_targets(self, point_clouds: list[Tensor], labels_of: list[DenseLabels]
                      ) -> tuple[Tensor, list[int], DenseTargets]:
        """The point tokens' output-grid cells (M, 3) int64 (clouds in order), the token count of each cloud, and
        their dense targets. point_clouds: the batch's (V_i, 9) clouds; labels_of: each cloud's room labels."""
        clouds = [cloud.cpu() for cloud in point_clouds]
        config = self.model.config
        grid, offset = output_grid_coords(
            config.point_backbone, config.point_config, torch.cat([c[:, :3] for c in clouds]).long(),
            torch.cumsum(torch.tensor([len(c) for c in clouds]), dim=0))
        counts = torch.diff(offset, prepend=offset.new_zeros(1)).tolist()
        return grid, counts, dense_targets(labels_of, grid, counts, self.cell_size)

    def terms(self, batch: dict[str, Any], examples: list[LayoutExample], indices: list[int], step: int,
              ranks: Ranks) -> dict[str, Tensor]:
        """The weighted loss terms of this process's part of a step. batch: `PromptMix.collate` of `examples` (the
        examples of dataset `indices`), its tensors on the model's device; clouds stay where the collate left them
        for the dense targets."""
        settings, model = self.settings, self.model
        target_length = batch["target_length"]
        attend = settings.pointer_layer >= 0
        # Only the last target_length + 1 positions predict answer tokens: the head skips the prompt.
        output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       point_clouds=batch["point_clouds"], logits_to_keep=target_length + 1, output_attentions=attend)
        logits = output.logits
        labels = batch["labels"][:, -target_length:]
        answer = labels != IGNORE_INDEX
        point_mask = batch["input_ids"] == model.config.point_token_id
        answer_share, point_share = ranks.shares([int(answer.sum()), int(point_mask.sum())])
        terms = {"layout": layout_loss(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                       self.numbers, settings.sigma_bins) * answer_share}
        labels_of = [self.dense_labels(i, example) for i, example in zip(indices, examples, strict=True)] \
            if self.heads else []
        captured = self.take_captured()
        if self.dense_head is not None:
            grid, counts, targets = self.token_targets(batch["point_clouds"], labels_of)
            targets = targets.to(logits.device)
            tokens = captured["normed"][point_mask]
            dense = self.dense_head.losses(tokens, targets)
            terms["dense"] = settings.dense_weight * (dense["occupancy"] + dense["extent"]) * point_share
            if self.dense_head.wall_offset:
                (near_share,) = ranks.shares([int(targets.near_wall.sum())])
                terms["wall_offset"] = settings.wall_offset_weight * dense["wall_offset"] * near_share
            if self.box_head is not None:
                (box_share,) = ranks.shares([int(targets.in_box.sum())])
                terms["box"] = settings.box_weight * box_loss(self.box_head(tokens.float()), targets) * box_share
        final_states = captured.get("final")
        if settings.pointer_weight > 0:
            # (B, T, L) the pointing head's attention from the positions predicting the answer, or None
            attention = output.attentions[settings.pointer_layer][:, 0, -target_length - 1 : -1] if attend else None
            terms["pointer"] = settings.pointer_weight * self._pointer_loss(
                final_states[:, -target_length - 1 : -1], labels, answer, tokens.split(counts), grid.split(counts),
                ranks, attention, point_mask)
        if self.read_head is not None and step >= settings.read_from_step:
            final = final_states[:, -target_length - 1 : -1]
            extent = torch.stack([torch.from_numpy(labels.extent) for labels in labels_of]) / EXTENT_SCALE_M
            target = extent.to(final.device)[:, None, :].expand(-1, target_length, -1)[answer]
            read_loss = F.smooth_l1_loss(self.read_head(final[answer].float()), target, beta=0.05)
            terms["read"] = settings.read_weight * read_loss * answer_share
        return terms

    def _pointer_loss(self, final: Tensor, labels: Tensor, answer: Tensor, tokens: tuple[Tensor, ...],
                      grids: tuple[Tensor, ...], ranks: Ranks, attention: Tensor | None, point_mask: Tensor) -> Tensor:
        """The pointer term over this process's box-line tokens. final: (B, T, H) last hidden states at the
        positions predicting the answer ids `labels` (B, T) (`answer`: where they are real); tokens, grids: each
        example's point tokens (M_b, H) and their output-grid cells (M_b, 3); attention: None to point with the
        pointer head, else (B, T, L) the pointing attention head's weights from those positions over the whole
        sequence, whose point columns are `point_mask` (B, L)."""
        losses, rows = [], 0
        for b, (row, is_answer, states, example_tokens, grid) in enumerate(
                zip(labels, answer, final, tokens, grids, strict=True)):
            offsets = answer_token_starts(self.mix.tokenizer, row[is_answer][:-1].tolist())  # without end of turn
            if offsets is None:
                continue
            text, starts = offsets
            indices, targets = box_pointer_targets(text, starts, self.num_bins, self.cell_size, grid)
            if len(indices):
                positions = is_answer.nonzero().squeeze(1)[indices.to(is_answer.device)]
                targets = targets.to(states.device)
                if attention is None:
                    loss = self.pointer_head.loss(states[positions], example_tokens, targets)
                else:
                    # (N, M_b): each row's attention on the point tokens (its whole row, text included, sums to 1)
                    mass = attention[b][positions][:, point_mask[b]].float()
                    loss = -mass.masked_fill(~targets, 0.0).sum(-1).clamp_min(1e-6).log().mean()
                losses.append(loss * len(indices))
                rows += len(indices)
        (share,) = ranks.shares([rows])
        return torch.stack(losses).sum() / rows * share if rows else final[:0].sum()
