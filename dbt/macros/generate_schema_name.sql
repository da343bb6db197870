{#-
    Custom schema names are used as they are (staging, intermediate, marts,
    seeds) instead of dbt's default "<target schema>_<custom schema>".
    Nodes without a custom schema go to the target's schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
