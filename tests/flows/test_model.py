"""A model-based test: hypothesis drives ingest, update, prune, rebuild and an update killed
(SIGKILL) at a random store write then rerun, and after every step the store must hold exactly
the committed studies, with the input hashes, that a simple model of the rules predicts."""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import dask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from catalog import open_catalog
from flows.build import BuildParameters, input_hash
from flows.ingest import ingest
from flows.phantom import PhantomInput, phantom_inputs
from flows.update import update
from storage.location import StoreRef
from storage.sources import list_studies

TESTS = Path(__file__).resolve().parents[1]  # where crashing_update.py is
SHAPE = (48, 48, 48)
SMALL = BuildParameters(canvas=48)
BASE = phantom_inputs(4, SHAPE, seed=5)
# A study's two versions: the same id and geometry, another noise seed (other content).
VERSIONS = [
    (study, PhantomInput(study.study_id, study.split, SHAPE, 99, study.geometry)) for study in BASE
]

versions_chosen = st.dictionaries(
    st.sampled_from(range(len(BASE))), st.sampled_from((0, 1)), min_size=1
)


class UpdateMachine(RuleBasedStateMachine):
    """The store under test, and the model: committed study id -> its input hash."""

    def __init__(self):
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="rga-model-"))
        self.dest = StoreRef(str(self.root / "dest.zarr"))
        self.sources = StoreRef("")  # set by first_build
        self.source_hashes: dict[str, str] = {}  # what the current sources would build
        self.committed: dict[str, str] = {}  # the model
        self.ingests = 0

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    @initialize()
    def first_build(self) -> None:
        """Every study committed first, so later sources that lack some leave studies gone."""
        self.ingest(dict.fromkeys(range(len(BASE)), 0))
        self._update(prune=False)

    # Every step ingests new sources first (a random subset of the studies, each in one of two
    # versions): studies are added, changed and gone in every step. The kill comes first, as
    # hypothesis draws the first rules most often.
    @rule(chosen=versions_chosen, kill_at=st.integers(1, 40), prune=st.booleans())
    def kill_and_rerun(self, chosen: dict[int, int], kill_at: int, prune: bool) -> None:
        self.ingest(chosen)
        killed = subprocess.run(
            [
                *(sys.executable, str(TESTS / "crashing_update.py"), str(kill_at)),
                *(self.sources.url, self.dest.url, "--image-size", str(SMALL.canvas)),
                *(["--prune"] if prune else []),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert killed.returncode in (0, -9), killed.stderr[-2000:]
        seen = self._store()  # the store opens, and nothing committed is lost or altered
        for study_id, digest in seen.items():
            assert digest in (self.committed.get(study_id), self.source_hashes.get(study_id))
        kept = set(self.committed) & set(self.source_hashes) if prune else set(self.committed)
        assert kept <= set(seen), "a study committed before the crash was lost"  # or unpruned
        self._update(prune)  # the rerun finishes the work

    @rule(chosen=versions_chosen)
    def prune(self, chosen: dict[int, int]) -> None:
        self.ingest(chosen)
        self._update(prune=True)

    @rule(chosen=versions_chosen)
    def update(self, chosen: dict[int, int]) -> None:
        self.ingest(chosen)
        self._update(prune=False)

    @rule(chosen=versions_chosen)
    def rebuild(self, chosen: dict[int, int]) -> None:
        self.ingest(chosen)
        with dask.config.set(scheduler="synchronous"):
            update(self.sources, self.dest, SMALL, rebuild=True)
        self.committed = dict(self.source_hashes)

    def ingest(self, chosen: dict[int, int]) -> None:
        """New sources: study ``index`` in version ``chosen[index]``."""
        self.ingests += 1
        self.sources = StoreRef(str(self.root / f"sources-{self.ingests}.zarr"))
        with dask.config.set(scheduler="synchronous"):
            studies = [VERSIONS[index][version] for index, version in sorted(chosen.items())]
            ingest(studies, self.sources)
        self.source_hashes = {
            study.study_id: input_hash(study, SMALL) for study in list_studies(self.sources)
        }

    def _update(self, prune: bool) -> None:
        """Run an update, and apply the model's rule: every source study is committed at its
        hash; studies gone from the sources stay unless pruned."""
        with dask.config.set(scheduler="synchronous"):
            summary = update(self.sources, self.dest, SMALL, prune=prune)
        assert not summary.failed
        if prune:
            self.committed = {}
        self.committed.update(self.source_hashes)

    def _store(self) -> dict[str, str]:
        """Committed study -> input hash, as a reader of the store sees it."""
        ds = open_catalog(self.dest)
        return {str(s): str(h) for s, h in zip(ds.study.values, ds.input_hash.values, strict=True)}

    @invariant()
    def store_matches_model(self) -> None:
        if self.committed or self.dest.exists():  # not before first_build
            assert self._store() == self.committed


UpdateMachine.TestCase.settings = settings(
    max_examples=8,
    stateful_step_count=6,
    deadline=None,
    derandomize=True,  # the same steps on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow],
)
test_updates_against_a_model = UpdateMachine.TestCase
