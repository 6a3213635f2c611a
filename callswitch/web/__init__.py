"""The web-callback widget: script, public site settings, live status stream and demo page.

``setup_web(app, demo=...)`` registers it all on the intake application; see docs/widget.md.
"""

from callswitch.web.routes import setup_web

__all__ = ["setup_web"]
