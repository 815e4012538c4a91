"""Generate ``simulated_data.npy``, the 2-D points of the synthetic experiment.

Four Gaussian groups, as the assignment describes them: two well separated ones (top
middle and middle right) and two close together at the bottom left, a tight one near
(-20, -10) and a looser one near (-10, -20). Rows are shuffled so that the notebook's
80/20 split (first 80% for training) draws from every group. The generator is seeded and
the values rounded, so regenerating reproduces the committed file byte for byte.
"""
import argparse
import io
import sys

import numpy as np

from . import DATA_FILE, RELEASE_DIR, SOURCE_DIR

SEED = 20261127
#: (centre, standard deviation, number of points) of each group.
GROUPS = (
    ((0.0, 20.0), 3.0, 300),     # top middle
    ((15.0, 3.0), 3.0, 300),     # middle right
    ((-20.0, -10.0), 1.5, 200),  # tight, bottom left
    ((-10.0, -20.0), 4.0, 200),  # looser, bottom left
)


def make_simulated_data(seed=SEED):
    """Return the simulated points, shape (1000, 2), float64, rows shuffled."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(centre, std, size=(count, 2)) for centre, std, count in GROUPS]
    points = np.concatenate(parts)
    points = points[rng.permutation(len(points))]
    return np.round(points, 5)


def to_npy_bytes(array):
    """Serialise ``array`` exactly as ``np.save`` writes it."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def stale_copies():
    """Return the data files (source and release) that differ from a fresh generation."""
    fresh = to_npy_bytes(make_simulated_data())
    paths = [SOURCE_DIR / DATA_FILE, RELEASE_DIR / DATA_FILE]
    return [p for p in paths if not p.exists() or p.read_bytes() != fresh]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that source/ holds the generated file")
    args = parser.parse_args(argv)
    target = SOURCE_DIR / DATA_FILE
    fresh = to_npy_bytes(make_simulated_data())
    if args.check:
        if not target.exists() or target.read_bytes() != fresh:
            print(f"{target} differs from a fresh generation: run `python -m assignment.data`")
            return 1
        print(f"{target.relative_to(SOURCE_DIR.parent.parent)} matches its generator")
        return 0
    target.write_bytes(fresh)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
