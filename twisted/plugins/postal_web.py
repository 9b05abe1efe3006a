from twisted.application.service import ServiceMaker

postal_web = ServiceMaker(
    "Postal web", "postal.tap.web",
    "Postal's HTTP API v1 (send and read messages), JWKS, health and metrics.", "postal-web")
