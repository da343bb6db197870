"""The service's endpoints, one router per resource; create_app includes them in this order.

common.py     what they share: the API key and scope check, the service's state, the audit entry, path ids
health.py     GET /v1/health
scores.py     GET /v1/scores/{user_id}
visa.py       GET /v1/visa/destinations, /v1/visa/{destination}/users/{user_id}, /v1/visa/{destination}/eligible
consents.py   POST /v1/consents
reports.py    POST /v1/reports, POST /v1/reports/verify, GET /v1/reports/public-key, GET /v1/reports/keys
"""

from __future__ import annotations

from sesame.service.routes import consents, health, reports, scores, visa

ROUTERS = (health.router, scores.router, visa.router, consents.router, reports.router)
