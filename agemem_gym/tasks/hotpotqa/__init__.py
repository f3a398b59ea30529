"""HotpotQA (distractor setting): ``source`` (the task source), ``stages`` (stage 1 and 2), ``data``
(loading files or the hub), ``text`` (wording and answer-aware rewrites)."""

from agemem_gym.tasks.hotpotqa.source import HotpotQATasks

__all__ = ["HotpotQATasks"]
