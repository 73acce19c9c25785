# One image for every mesh service; compose.yaml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agents ./agents
COPY protocols ./protocols
COPY registry ./registry
COPY tracing ./tracing
# Editable, so the packages are imported from /app with their data files next to them (the
# customer-service agents seed their state from agents/customer_service/data); a plain install
# copies only what pyproject.toml declares, and it declares no package data.
RUN pip install --no-cache-dir -e .
ENV MESH_HOME=/var/lib/mesh MESH_HOST=0.0.0.0
VOLUME /var/lib/mesh
ENTRYPOINT ["mesh"]
