"""The work directory of a render: manifest, finished frames, lock, status."""
