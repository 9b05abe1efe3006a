"""txpostal: Postal, the open-source mail delivery platform, as Twisted daemons."""
