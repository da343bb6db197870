{#- Engine-specific list (array) SQL used by the project. -#}

{#- The type of a list of strings. -#}
{% macro string_array_type() -%}
    {{ return(adapter.dispatch('string_array_type', 'sesame')()) }}
{%- endmacro %}

{% macro default__string_array_type() -%}
    varchar[]
{%- endmacro %}

{% macro spark__string_array_type() -%}
    array<string>
{%- endmacro %}

{#- The number of elements of a list. -#}
{% macro array_size(col) -%}
    {{ return(adapter.dispatch('array_size', 'sesame')(col)) }}
{%- endmacro %}

{% macro default__array_size(col) -%}
    len({{ col }})
{%- endmacro %}

{% macro spark__array_size(col) -%}
    size({{ col }})
{%- endmacro %}

{#- One row per element of a list (use in a select list). -#}
{% macro unnest_array(col) -%}
    {{ return(adapter.dispatch('unnest_array', 'sesame')(col)) }}
{%- endmacro %}

{% macro default__unnest_array(col) -%}
    unnest({{ col }})
{%- endmacro %}

{% macro spark__unnest_array(col) -%}
    explode({{ col }})
{%- endmacro %}
