"""No-Memory: the answering model with its current context and nothing else.

It never touches long-term memory: after the context reset that ends stage 1 it cannot know
the stage-1 facts, which is the point of the baseline (the paper's lower bound).
"""

from __future__ import annotations

from typing import ClassVar

from baselines._controller import MemoryController


class NoMemory(MemoryController):
    """Answers from the current context only; stores and retrieves nothing.

    Takes the answering-model options of :class:`~baselines._controller.MemoryController`.

    Example:
        >>> from agemem_gym import AgeMemEnv
        >>> from agemem_gym.llm.base import Generation, LLMBackend
        >>> from agemem_gym.rollout import rollout
        >>> class Replies(LLMBackend):  # stands in for the model's text
        ...     name = "replies"
        ...     def generate(self, prompts, **kw):
        ...         return [Generation("<think></think><answer>no idea</answer>", 9, 5, 0.0)
        ...                 for _ in prompts]
        ...     def count_tokens(self, text): return len(text) // 4
        >>> env = AgeMemEnv("assistant", num_distractors=1, **NoMemory.env_options)
        >>> reward, info = rollout(env, NoMemory(llm=Replies()), seed=0, task_index=0)
        >>> info["ltm"], info["metrics"]["score"]
        ([], 0.0)
        >>> env.close()
    """

    name: ClassVar[str] = "no-memory"
