{#-
    pseudonymize(col): the analysts' user_key for an upstream user id.

        user_key = first 32 characters of the lower-case hex SHA-256 digest of
                   the UTF-8 string  SECRET || '|' || upstream_id

    where SECRET is the value of the environment variable SESAME_USER_KEY_SECRET.
    Python equivalent, for any other engine or service that must produce the
    same key:

        hashlib.sha256(f"{secret}|{upstream_id}".encode("utf-8")).hexdigest()[:32]

    A null upstream id gives a null key. The secret must be set and non-empty:
    without it the build stops rather than publish keys anyone could recompute.

    The secret is rendered into the compiled SQL, so models calling this macro
    are materialized as tables (a view would keep the SQL, secret included, in
    the warehouse catalog), and dbt's target/ and logs/ folders must stay private.
-#}
{% macro pseudonymize(col) -%}
    {{ return(adapter.dispatch('pseudonymize', 'sesame')(col)) }}
{%- endmacro %}

{% macro user_key_secret_literal() -%}
    {%- set secret = env_var('SESAME_USER_KEY_SECRET', '') -%}
    {%- if execute and secret | length == 0 -%}
        {{ exceptions.raise_compiler_error("SESAME_USER_KEY_SECRET is not set: refusing to build user keys without a secret") }}
    {%- endif -%}
    '{{ secret | replace("'", "''") }}'
{%- endmacro %}

{% macro default__pseudonymize(col) -%}
    substr(sha256({{ user_key_secret_literal() }} || '|' || cast({{ col }} as varchar)), 1, 32)
{%- endmacro %}

{% macro spark__pseudonymize(col) -%}
    substr(sha2(concat({{ user_key_secret_literal() }}, '|', cast({{ col }} as string)), 256), 1, 32)
{%- endmacro %}
