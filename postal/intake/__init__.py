"""
What to do with received mail: authenticate submitters, classify recipients,
authorise senders, add the Received header, and store durably (group commit).
No protocol code and no SQL: storage is reached through L{IIntakeStore}.
"""
