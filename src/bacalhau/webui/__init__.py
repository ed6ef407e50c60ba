"""The web UI: static HTML, CSS and JavaScript modules (``static/``) served by an orchestrator when WebUI.Enabled is
set, talking to the REST API from the browser (``server.py`` says how)."""
