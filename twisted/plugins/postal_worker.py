from twisted.application.service import ServiceMaker

postal_worker = ServiceMaker(
    "Postal worker", "postal.tap.worker",
    "Claim queued messages and deliver them over SMTP, DKIM-signed, recording outcomes and webhooks.",
    "postal-worker")
