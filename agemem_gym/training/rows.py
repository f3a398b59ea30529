"""Training rows: one model turn each (the context it saw, the tokens it wrote), packed and
padded into tensors, and the per-token log-probabilities a causal LM gives them.

A turn's prompt is everything the model read at that turn (system prompt, user messages, tool
results, its own earlier turns); only the completion carries loss. Summary_context and
Filter_context rewrite the context, so the turns of one episode are not, in general, prefixes
of each other: every turn is its own :class:`TurnRow`. When a later turn's prompt does begin
with an earlier turn's prompt and completion, token for token, :func:`pack` computes both in
one sequence (a causal model gives the earlier turn's tokens the same log-probs either way),
which saves most of the compute of multi-turn episodes.

Example:
    >>> first = TurnRow([5, 6], [7], advantage=1.0, episode=0)
    >>> second = TurnRow([5, 6, 7, 3], [8, 9], advantage=1.0, episode=0)
    >>> [packed] = pack([first, second])
    >>> packed.ids, packed.turns
    ([5, 6, 7, 3, 8, 9], [-1, -1, 0, -1, 1, 1])
    >>> collate([packed], pad_id=0)["completion_mask"].tolist()
    [[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agemem_gym.errors import MissingExtraError

try:
    import torch
except ImportError as e:  # pragma: no cover - the [train] extra brings torch
    raise MissingExtraError("agemem_gym.training", "train") from e


@dataclass
class TurnRow:
    """One model turn.

    Attributes:
        prompt_ids: the templated context, generation prompt included.
        completion_ids: the tokens the model produced (the only ones with loss).
        advantage: the turn's advantage (its episode's, in step-wise GRPO).
        old_logprobs: log-probs of ``completion_ids`` under the policy that sampled them.
        episode: index of the episode the turn belongs to.
        has_tool_call: whether the turn's response called a tool.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float = 0.0
    old_logprobs: list[float] | None = None
    episode: int = -1
    has_tool_call: bool = False

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def prompt_ids(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[int]:
    """Token ids of a chat context as a model is prompted with it (generation prompt added)."""
    chat = [{"role": m["role"], "content": m["content"]} for m in messages]
    text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    return list(tokenizer.encode(text, add_special_tokens=False))


@dataclass
class PackedRow:
    """One sequence holding one or more turns of the same episode.

    Attributes:
        ids: the tokens.
        turns: per token, the index (into the list given to :func:`pack`) of the turn whose
            completion it belongs to, or -1 for context (prompt, tool results, user messages).
        old_logprobs: per token, the sampling policy's log-prob (0 for context).
        advantages: per token, its turn's advantage (0 for context).
    """

    ids: list[int]
    turns: list[int]
    old_logprobs: list[float]
    advantages: list[float]


def pack(rows: Sequence[TurnRow]) -> list[PackedRow]:
    """Merge each turn into the sequence of the same episode's earlier turn when its prompt
    extends that turn's prompt and completion exactly; otherwise start a new sequence."""
    packed: list[PackedRow] = []
    open_by_episode: dict[int, PackedRow] = {}
    for index, row in enumerate(rows):
        current = open_by_episode.get(row.episode) if row.episode >= 0 else None
        n = len(current.ids) if current is not None else 0
        if current is None or row.prompt_ids[:n] != current.ids:
            current = PackedRow([], [], [], [])
            packed.append(current)
            n = 0
        context = row.prompt_ids[n:]
        old = row.old_logprobs if row.old_logprobs is not None else [0.0] * len(row.completion_ids)
        current.ids += context + row.completion_ids
        current.turns += [-1] * len(context) + [index] * len(row.completion_ids)
        current.old_logprobs += [0.0] * len(context) + list(old)
        current.advantages += [0.0] * len(context) + [row.advantage] * len(row.completion_ids)
        if row.episode >= 0:
            open_by_episode[row.episode] = current
    return packed


def collate(rows: Sequence[PackedRow], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad packed rows into ``input_ids``, ``attention_mask``, ``completion_mask`` (1
    where a token is the model's own), ``turns`` (-1 on context and padding),
    ``old_logprobs`` and ``advantages`` (per token)."""
    width = max(len(r.ids) for r in rows)
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    turns = torch.full(shape, -1, dtype=torch.long)
    old = torch.zeros(shape, dtype=torch.float32)
    advantages = torch.zeros(shape, dtype=torch.float32)
    for i, row in enumerate(rows):
        n = len(row.ids)
        input_ids[i, :n] = torch.tensor(row.ids, dtype=torch.long)
        attention[i, :n] = 1
        turns[i, :n] = torch.tensor(row.turns, dtype=torch.long)
        old[i, :n] = torch.tensor(row.old_logprobs, dtype=torch.float32)
        advantages[i, :n] = torch.tensor(row.advantages, dtype=torch.float32)
    return {"input_ids": input_ids, "attention_mask": attention,
            "completion_mask": (turns >= 0).float(), "turns": turns,
            "old_logprobs": old, "advantages": advantages}


def token_logprobs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` log-probability of each token given the ones before it (0 at position 0)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    picked = torch.gather(logits, 2, input_ids[:, 1:, None]).squeeze(2)
    logp = picked - torch.logsumexp(logits, dim=-1)
    return torch.nn.functional.pad(logp, (1, 0))


def length_batches(rows: Sequence[PackedRow], tokens_per_batch: int) -> list[list[int]]:
    """Row indices grouped by similar length, each group at most ``tokens_per_batch`` padded
    tokens (and at least one row), so padding wastes little."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and len(rows[i].ids) * (len(current) + 1) > tokens_per_batch:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
