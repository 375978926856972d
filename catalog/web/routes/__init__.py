"""The catalog's routes, one module per idea, each exposing `router(web) -> APIRouter`
(`catalog.web.context.Web`); `catalog.web.registry` lists them in one table."""
