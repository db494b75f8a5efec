"""Rendering a clip: the sweep over frames, passes, segments, the render job, the Ray driver,
previews."""
