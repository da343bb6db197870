{#-
    The night being built, from var('ds'), as a SQL date literal.
    The value is checked to be a plain YYYY-MM-DD date so that nothing else can
    reach the SQL through the variable.
-#}
{% macro night() -%}
    cast('{{ night_ds() }}' as date)
{%- endmacro %}

{#- The night being built as a checked YYYY-MM-DD string. -#}
{% macro night_ds() -%}
    {%- set ds = var('ds') | string | trim -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', ds) -%}
        {{ exceptions.raise_compiler_error("var 'ds' must be a date YYYY-MM-DD, got: " ~ ds) }}
    {%- endif -%}
    {{ return(ds) }}
{%- endmacro %}
