# One image for every mesh service; compose.yaml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agents ./agents
COPY protocols ./protocols
COPY registry ./registry
COPY tracing ./tracing
RUN pip install --no-cache-dir .
ENV MESH_HOME=/var/lib/mesh MESH_HOST=0.0.0.0
VOLUME /var/lib/mesh
ENTRYPOINT ["mesh"]
