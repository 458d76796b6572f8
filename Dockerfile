# One image for the collector, the workers and the API: `docker run submeter:local <cmd>`
# runs `npx submeter <cmd>` (collect, workers, api, bill, ...). Sources are TypeScript run
# through tsx (a runtime dependency), so there is no build step. Node 24 is the maintained
# LTS line (Node 20 reached end of life in April 2026); the code runs on 20.19+ as well.
FROM node:24-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

# Dependencies first: this layer is rebuilt only when the lockfile changes.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit && npm cache clean --force

COPY . .

# The collector's store-and-forward spool (a volume in compose.yaml), owned by the app user.
RUN mkdir -p /var/lib/submeter/spool && chown -R node:node /var/lib/submeter
USER node

# --offline: resolve the project's own bin, never reach for the registry at start-up.
ENTRYPOINT ["npx", "--offline", "submeter"]
CMD ["--help"]
