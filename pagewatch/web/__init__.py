"""`pagewatch serve`: a small server-rendered web app to triage alerts over a workspace.

Pure parts (`highlight`, `chart`) turn texts and counts into marked pieces and chart geometry;
`views` reads the workspace into frozen view values; `render` holds the Jinja2 templates (shared
with `pagewatch report`); `app` is the Starlette application and its security rules; `server`
binds the socket and runs uvicorn. Nothing here is imported by the pipeline.
"""
