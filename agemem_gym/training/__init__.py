"""Training: supervised warm start and step-wise GRPO (needs the ``[train]`` extra).

Nothing here is imported by ``import agemem_gym``; import the submodules you need.
"""
