"""The web console: page shells and their scripts, served by the proxy beside its API.

Pages carry no data; their scripts fetch it from the JSON API with the tab's token, so the console has
exactly the access its token has (and the shells and static files are served without one). Everything a page
loads ships in this package: no CDN, no Node at build or install time (dev/vendor-assets refreshes the
vendored libraries).
"""
