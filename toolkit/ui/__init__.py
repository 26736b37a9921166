"""``toolkit ui``: a local, read-only web app over run directories and schedules.

:mod:`toolkit.ui.data` reads, :mod:`toolkit.ui.server` serves (the standard library's
``http.server``); the pages are drawn by ``assets/ui.js`` from JSON.
"""
