from twisted.application.service import ServiceMaker

postal_requeuer = ServiceMaker(
    "Postal requeuer", "postal.tap.requeuer",
    "Return due retries and dead workers' claims to the ready queue (one active per installation).",
    "postal-requeuer")
