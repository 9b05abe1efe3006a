from twisted.application.service import ServiceMaker

postal_supervisor = ServiceMaker(
    "Postal supervisor", "postal.tap.supervisor",
    "Run every configured role as its own child process, restarted when it dies.",
    "postal-supervisor")
