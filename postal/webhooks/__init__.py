"""
Webhooks: the event payloads (api-contract.md section 3.6), signing every
Postal HTTP request, and the sender that claims queued webhook requests and
posts them with retries.  L{postal.webhooks.service.build_webhook_sender}
builds the sender for a role's service tree.
"""
