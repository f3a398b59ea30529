import subprocess
import sys
import textwrap

import pytest
import yaml

from agemem_gym.errors import ConfigError
from benchmarks.run_folder import RunFolder, RunFolderBusyError
from benchmarks.runner import RunConfig, run

IDENTITY = {"env": "assistant", "agent": "oracle", "seed": 0, "stages": (1, 2, 3)}


def _finish_one(folder):
    folder.episodes_path.write_text('{"episode_id": "assistant-00000"}\n')


def test_a_second_writer_in_the_same_process_is_refused(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out, IDENTITY), pytest.raises(RunFolderBusyError,
                                                 match=r"run is in use by another run \(pid "):
        RunFolder(out, IDENTITY).__enter__()
    with RunFolder(out, IDENTITY):  # released on exit
        pass


def test_a_run_into_a_folder_another_process_writes_gets_a_clear_error(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from benchmarks.run_folder import RunFolder
        with RunFolder({str(out)!r}, {{"agent": "oracle"}}):
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = RunConfig(env="assistant", agent="oracle", out=out, episodes=1,
                           env_options={"num_facts": 3, "num_distractors": 1}, progress=False)
        with pytest.raises(RunFolderBusyError) as e:
            run(config)
        assert str(e.value).startswith(f"{out} is in use by another run (pid {holder.pid}, started ")
        assert str(e.value).endswith("wait for it to finish, or choose another --out")
    finally:
        holder.kill()
        holder.wait()
    assert run(config)[0]["episode_id"] == "assistant-00000"  # a killed holder frees the folder


def test_a_run_that_finished_nothing_leaves_nothing_that_blocks(tmp_path):
    out = tmp_path / "run"
    bad = RunConfig(env="assistant", agent="oracle", out=out, episodes=1, progress=False,
                    env_options={"num_facts": 0})  # fails inside the run
    with pytest.raises(ConfigError):
        run(bad)
    assert not out.exists()
    good = RunConfig(env="assistant", agent="oracle", out=out, episodes=1, progress=False,
                     env_options={"num_facts": 3, "num_distractors": 1})
    assert len(run(good)) == 1
    assert yaml.safe_load((out / "config.yaml").read_text())["run"]["env_options"] == {
        "num_facts": 3, "num_distractors": 1}


def test_a_stale_config_without_episodes_is_replaced_but_a_real_run_is_kept(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump({"run": {**IDENTITY, "agent": "random",
                                                             "stages": [1, 2, 3]}}))
    with RunFolder(out, IDENTITY) as folder:  # a failed start's config: replaced
        _finish_one(folder)
    assert yaml.safe_load((out / "config.yaml").read_text())["run"]["agent"] == "oracle"
    with pytest.raises(ConfigError) as e:
        RunFolder(out, {**IDENTITY, "agent": "random"}).__enter__()
    assert str(e.value) == (
        f"{out} holds a run with different agent (agent: 'oracle' there, 'random' now); resume "
        "with the same settings, pass --overwrite to replace that run, or choose another --out")
    with RunFolder(out, IDENTITY):  # same settings: resumes, episodes kept
        pass
    assert (out / "episodes.jsonl").read_text().count("episode_id") == 1


def test_overwrite_replaces_the_old_run(tmp_path):
    out = tmp_path / "run"
    options = {"num_facts": 3, "num_distractors": 1}
    run(RunConfig(env="assistant", agent="oracle", out=out, episodes=2, env_options=options,
                  progress=False))
    other = RunConfig(env="assistant", agent="noop", out=out, episodes=1, env_options=options,
                      progress=False)
    with pytest.raises(ConfigError, match="pass --overwrite"):
        run(other)
    other.overwrite = True
    records = run(other)
    assert [r["agent"] for r in records] == ["noop"]
    assert yaml.safe_load((out / "config.yaml").read_text())["run"]["agent"] == "noop"
    assert (out / "episodes.jsonl").read_text().count("\n") == 1


def test_the_lock_file_goes_when_the_run_ends(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out, IDENTITY) as folder:
        assert (out / ".lock").read_text().startswith("pid ")
        _finish_one(folder)
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "episodes.jsonl"]
