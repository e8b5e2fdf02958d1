"""The web layer: JSON views and the dashboard page, served by the Faust worker's web server."""
