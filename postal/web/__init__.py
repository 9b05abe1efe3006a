"""
The web role's HTTP protocol layer: Postal's API v1 and the JWKS document as
Klein applications (classes holding their dependencies), the health and
metrics pages, and the site that serves them.
"""
