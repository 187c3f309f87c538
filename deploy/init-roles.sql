-- Run once by the postgres container on first start (docker-entrypoint-initdb.d).
-- The owner role runs migrations; `erp db upgrade` creates the app and analytics
-- roles from DATABASE_URL / DATABASE_ANALYTICS_URL (the owner has CREATEROLE).
CREATE ROLE erp_owner LOGIN PASSWORD 'change-me-owner' CREATEROLE;
CREATE DATABASE erp OWNER erp_owner;
