from twisted.application.service import ServiceMaker

postal_cron = ServiceMaker(
    "Postal cron", "postal.tap.cron",
    "Run scheduled tasks (hold expiry, retention, pruning, send-limit notices, DNS re-checks) "
    "while holding the cron lease.", "postal-cron")
