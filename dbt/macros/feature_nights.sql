{#-
    The nights a features build computes, one row each (column `night`, a
    date): var('nights'), a list of YYYY-MM-DD dates, when the caller passes
    one (training builds every observation night in one run), otherwise the
    night var('ds'). Each value is checked to be a plain date, as night() does.
-#}
{% macro feature_nights() -%}
    {%- set nights = var('nights', [night_ds()]) -%}
    {%- if nights is string -%}
        {%- set nights = [nights] -%}
    {%- endif -%}
    {%- for night in nights -%}
        {%- set night = night | string | trim -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', night) -%}
            {{ exceptions.raise_compiler_error("var 'nights' must list dates YYYY-MM-DD, got: " ~ night) }}
        {%- endif %}
    {{ 'union all ' if not loop.first }}select cast('{{ night }}' as date) as night
    {%- endfor %}
{%- endmacro %}
