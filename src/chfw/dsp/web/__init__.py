"""The DSP operator's dashboard (in ``chfw serve``): overview, hub page, dead letters.

Its pages are in ``templates/`` here, added to the shared environment on import.
"""

from chfw.shared.web.render import add_templates

add_templates(__name__)
