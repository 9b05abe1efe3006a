from twisted.application.service import ServiceMaker

postal_smtp = ServiceMaker(
    "Postal SMTP", "postal.tap.smtp",
    "Receive mail over SMTP (submission, routes, bounces) and queue it durably.", "postal-smtp")
