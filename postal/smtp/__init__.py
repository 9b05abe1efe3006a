"""
The inbound SMTP protocol: a pure ESMTP session state machine (lines in,
replies out) and its Twisted glue.  Talks only to L{postal.intake}.
"""
