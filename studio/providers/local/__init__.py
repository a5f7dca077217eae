"""The local renderer: a free provider that makes the clip in Studio's own worker with PyAV.

client.py speaks the provider protocol over the LocalRender table (its "server side"),
worker.py is that server (the render task), renderer.py makes the pictures and sound."""
