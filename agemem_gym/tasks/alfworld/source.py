"""ALFWorld as a three-stage AgeMem benchmark (``AgeMem/ALFWorld-v0``).

Description:
    ALFWorld's text household games: the agent moves between receptacles, takes, cleans,
    heats, cools and places objects to reach a goal such as "put a clean bowl in cabinet."
    The evaluation set is the 134 unseen games (``valid_unseen``, ALFWorld's
    eval_out_of_distribution split), six task families. Before the game, the user tells the
    agent where things are; an agent that keeps those notes in memory, and keeps the corrected
    ones, can go straight to the object instead of searching the house.

Stages (our construction; the paper gives none), from each game's ground truth (the PDDL
initial state and the stored expert walkthrough):
    Stage 1, one user turn each, order drawn from the seeded generator:

    - ``add`` the task object's location, but an *outdated* one: a receptacle that does not
      hold it (preferably of a type that holds objects in this room). Always first.
    - ``add`` the appliance for the state change ("things get cleaned with sinkbasin 1"; the
      microwave for heating, the fridge for cooling) or, for look-at tasks, where the working
      lamp stands ("desklamp 1 is on desk 1").
    - ``add`` the destination receptacle the walkthrough uses, noting when it must be opened.
    - ``add`` the second object's location (two-object tasks).
    - ``add`` a wrong note about a decoy object of another type, and one ``none`` small-talk
      line.
    - Last, in random order: ``update`` the task object ("I moved it from the <old> to the
      <true receptacle>": the outdated location is superseded) and ``delete`` the
      decoy note ("forget what I said about the <decoy>").

    ``supporting_facts`` are the contents left after these operations. Stage 2: ``num_distractors``
    true but irrelevant placements of objects of other types ("the keychain 3 is on shelf 1"),
    drawn without replacement. Instances are named as the game names them ("bowl 1").

Observation:
    Stage 3 starts with the goal ("Your task is to: ...") and the room description; each
    action is answered by the game's text feedback ("You arrive at countertop 3. On the
    countertop 3, you see a bowl 1."). Invalid commands answer "Nothing happens.".

Action:
    One game command per ``<answer>``: ``go to {recep}``, ``open/close {recep}``,
    ``take {obj} from {recep}``, ``move {obj} to {recep}`` (``put {obj} in/on {recep}`` is
    accepted too), ``clean/heat/cool {obj} with {recep}``, ``use {lamp}``, ``examine {x}``,
    ``look``, ``inventory``; and the meta action ``check valid actions``, which lists the
    admissible commands and uses one step.

Reward/metrics:
    ``success`` when the game is won. ``progress``: the fraction of the task family's ordered
    milestones reached (take the object; reach the appliance holding it; change its state;
    reach a destination holding it; place it; see :mod:`agemem_gym.tasks.alfworld.progress`),
    never decreasing, 1.0 on a win. ALFWorld labels for progress are not used (they are not
    available), so progress rates are not comparable with AgentBoard's. The task metric is
    success.

Termination:
    The game is won, or ``max_steps`` (default 50; AgentBoard's 30 with ``rules="agentboard"``,
    the official protocol's setting) stage-3 actions were taken. The stored walkthroughs need
    at most 9 steps; the larger default leaves room for checks and search.

Data:
    The ``alfworld-download`` layout: ``<root>/json_2.1.1/<split>/<task>/<trial>/game.tw-pddl``
    with ``traj_data.json`` beside it (the handcoded expert reads it), in the alfworld>=0.4
    grammar ("move X to Y"). ``data=`` names the root (or the split directory itself);
    otherwise ``$ALFWORLD_DATA``, then ``~/.cache/alfworld``. Games marked unsolvable and
    ``movable``/``Sliced`` games are skipped, as alfworld does. Nothing is written there.
    The engine needs the ``[alfworld]`` extra (alfworld, textworld[pddl]).

    Training tasks (:meth:`ALFWorldTasks.sample`) are the ``train`` games beside the evaluation
    split (``json_2.1.1/train``, 3,553 games in the full download) minus any evaluation game;
    a data folder without them refuses to give training tasks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.protocols import check_rules
from agemem_gym.tasks._common import given_path, memory_after
from agemem_gym.tasks.alfworld.engine import ALFWorldEngine
from agemem_gym.tasks.alfworld.game import GameSpec, load_game
from agemem_gym.tasks.alfworld.progress import milestones
from agemem_gym.tasks.alfworld.stages import build_distractors, build_stage1
from agemem_gym.tasks.base import Engine, NoTrainingDataError, TaskInstance, TaskSource

_UNSOLVABLE = re.compile(r'"solvable"\s*:\s*false')
_DOWNLOAD_HINT = (
    "pass data=<directory>, or set ALFWORLD_DATA; download the games with `alfworld-download` "
    "(pip install 'agemem-gym[alfworld]')"
)


def _data_root(data: str | os.PathLike[str] | None) -> Path:
    """``data``, else ``$ALFWORLD_DATA``, else alfworld's default ``~/.cache/alfworld``."""
    root, _ = given_path(data, "ALFWORLD_DATA")
    return root if root is not None else Path("~/.cache/alfworld").expanduser()


def find_games(data: str | os.PathLike[str] | None, split: str) -> list[Path]:
    """The playable game files of ``split``, sorted by path.

    Raises:
        DataNotFoundError: no directory, or no game in it.
    """
    root = _data_root(data)
    if not root.is_dir():
        raise DataNotFoundError(
            f"ALFWorld data directory {str(root)!r} does not exist: {_DOWNLOAD_HINT}"
        )
    for folder in (root / "json_2.1.1" / split, root / split, root):
        files = _playable(folder)
        if files:
            return files
    raise DataNotFoundError(
        f"no ALFWorld games (<task>/<trial>/game.tw-pddl) under {str(root)!r} for split "
        f"{split!r}: {_DOWNLOAD_HINT}"
    )


def _playable(folder: Path) -> list[Path]:
    """The game files under ``folder`` (``<task>/<trial>/game.tw-pddl``), as alfworld keeps them."""
    files = sorted(folder.glob("*/*/game.tw-pddl")) if folder.is_dir() else []
    files = [f for f in files if "movable" not in str(f) and "Sliced" not in str(f)]
    return [f for f in files if not _UNSOLVABLE.search(f.read_text(encoding="utf-8"))]


def find_train_games(data: str | os.PathLike[str] | None, evaluation: list[Path]) -> list[Path]:
    """The training games: ``train/`` beside the evaluation split, minus any evaluation game.

    Raises:
        NoTrainingDataError: the data folder has no train games.
    """
    root = _data_root(data)
    held_out = {(g.parent.parent.name, g.parent.name) for g in evaluation}
    for folder in (root / "json_2.1.1" / "train", root / "train", root.parent / "train"):
        games = [g for g in _playable(folder) if (g.parent.parent.name, g.parent.name) not in held_out]
        if games:
            return games
    raise NoTrainingDataError(
        f"ALFWorld training needs the train games, and {str(root)!r} has none "
        "(json_2.1.1/train/<task>/<trial>/game.tw-pddl beside valid_unseen/): download them "
        "with `alfworld-download` and pass data=<that root>"
    )


class ALFWorldTasks(TaskSource):
    """The ALFWorld evaluation games as AgeMem tasks (interactive: stage 3 plays the game).

    Args:
        data: the ALFWorld data root (or the split directory); default ``$ALFWORLD_DATA``.
        split: ``valid_unseen`` (134 games, the usual evaluation set), ``valid_seen``, ...
        num_distractors: stage-2 messages per task.
        max_steps: stage-3 actions allowed (50; 30 under AgentBoard's rules).
        rules: ``"ours"`` or ``"agentboard"`` (the official protocol): AgentBoard's 30-step
            limit. Success (the game won) is the same under both; AgentBoard's progress needs
            its ALFWorld subgoal labels, which are not published, so progress stays ours.

    >>> source = ALFWorldTasks(data=DATA)
    >>> len(source), source.task_metric
    (134, 'success')
    >>> task = source.get(0, np.random.default_rng(0))
    >>> task.query, task.metadata["walkthrough"][:2]
    ('Your task is to: examine the alarmclock with the desklamp.', ['go to desk 2', 'take alarmclock 1 from desk 2'])
    """

    name = "alfworld"
    instructions = (
        "In the final stage you act in a text household game: each <answer> holds one command, "
        "e.g. `go to cabinet 1`, `open cabinet 1`, `take mug 1 from cabinet 1`, "
        "`move mug 1 to desk 1`, `clean/heat/cool mug 1 with sinkbasin 1/microwave 1/fridge 1`, "
        "`use desklamp 1`, `examine desk 1`, `look`, `inventory`. Say `check valid actions` to "
        "list the commands that are possible now."
    )
    max_rounds = 120
    token_budget = 8192

    def __init__(
        self,
        *,
        data: str | os.PathLike[str] | None = None,
        split: str = "valid_unseen",
        num_distractors: int = 4,
        max_steps: int | None = None,
        rules: str = "ours",
    ):
        self.rules = check_rules(rules, "alfworld")
        if max_steps is None:
            max_steps = 30 if rules == "agentboard" else 50
        if num_distractors < 0:
            raise ConfigError(f"num_distractors must be >= 0, got {num_distractors}")
        if max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        self.data, self.split = data, split
        self.num_distractors, self.max_steps = num_distractors, max_steps
        self._games: list[Path] | None = None
        self._specs: dict[int, GameSpec] = {}
        self._train: list[Path] | None = None

    @property
    def games(self) -> list[Path]:
        """The game files, found on first use."""
        if self._games is None:
            self._games = find_games(self.data, self.split)
        return self._games

    def __len__(self) -> int:
        return len(self.games)

    def spec(self, index: int) -> GameSpec:
        """The parsed ground truth of game ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"ALFWorld task index {index} out of range 0..{len(self) - 1}")
        if index not in self._specs:
            self._specs[index] = load_game(self.games[index])
        return self._specs[index]

    def get(self, index: int, rng: np.random.Generator) -> TaskInstance:
        """Game ``index`` with its stage-1 facts and stage-2 distractors worded by ``rng``."""
        return self._task(self.spec(index), rng)

    @property
    def train_games(self) -> list[Path]:
        """The training games (found on first use; never an evaluation game)."""
        if self._train is None:
            self._train = find_train_games(self.data, self.games)
        return self._train

    def training_split(self) -> str:
        """The train games' folder and count."""
        games = self.train_games
        return f"alfworld: {len(games)} train games under {games[0].parent.parent.parent}"

    def sample(self, rng: np.random.Generator) -> TaskInstance:
        """A training task: one of the train games."""
        games = self.train_games
        return self._task(load_game(games[int(rng.integers(len(games)))]), rng)

    def _task(self, spec: GameSpec, rng: np.random.Generator) -> TaskInstance:
        facts = build_stage1(spec, rng)
        avoid = {f.key for f in facts}
        distractors = build_distractors(spec, rng, self.num_distractors, avoid)
        query = f"Your task is to: {spec.goal}"
        key_items = tuple(
            dict.fromkeys(t for t in (spec.object_type, spec.target_type) if t in query.lower())
        )
        plan = milestones(spec.task_type, spec.object_type, spec.target_type)
        path = Path(spec.game_file)
        metadata: dict[str, Any] = {
            "game_file": spec.game_file,
            "task_type": spec.task_type,
            "object_type": spec.object_type,
            "target_type": spec.target_type,
            "walkthrough": list(spec.walkthrough),
            "milestones": [m.describe() for m in plan],
        }
        return TaskInstance(
            task_id=f"{path.parent.parent.name}/{path.parent.name}",
            query=query,
            stage1=tuple(facts),
            distractors=tuple(distractors),
            supporting_facts=memory_after(facts),
            key_items=key_items,
            category=spec.task_type,
            metadata=metadata,
        )

    def make_engine(self) -> Engine:
        """A fresh :class:`ALFWorldEngine` (the packages load on its first reset)."""
        return ALFWorldEngine(max_steps=self.max_steps)

    @property
    def task_metric(self) -> str:
        return "success"
