"""Rendering a clip: the frame loop, segments, the render job, the Ray driver, previews."""
