"""
Outgoing messages made from HTTP API requests: validating a send request,
authorising its From/Sender against the server's verified domains, building
the MIME message, storing it durably (group commit), and reading messages
back for the API's expansions.  No protocol code and no SQL.
"""
