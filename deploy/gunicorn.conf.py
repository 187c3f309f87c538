"""gunicorn settings for the web app (``gunicorn -c deploy/gunicorn.conf.py 'app:create_app()'``).

Threads rather than many processes: requests wait on PostgreSQL most of the time,
and each process holds its own connection pool (10 + 10 overflow by default).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = "gthread"
timeout = 60
graceful_timeout = 30
keepalive = 5
# One access-log line per request with the request id the app puts on every response.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
